#pragma once
// What the run files and the run log must not contain, and how it is taken out. A secret is
//  - a value read for an API key: the variables named by `api_key_env` and the files named by
//    `api_key_file` anywhere in the workflow's resources and stages' configs;
//  - the value (8 characters or more) of an environment variable whose name looks secret (contains
//    KEY, TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL): `${env:OPENAI_API_KEY}` in a var, or a key
//    pasted into `--set`;
//  - a var or `--set` whose own name looks secret (api_key, token, password, ...; not *_env, *_file).
// Values are replaced by "***" wherever they occur in a string; secret-named vars entirely.
#include <string>
#include <utility>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

inline constexpr const char* kRedacted = "***";

bool looks_like_secret_name(const std::string& name);

class SecretRedactor {
 public:
  SecretRedactor() = default;
  explicit SecretRedactor(const Workflow& workflow);  // the environment's and the workflow's secrets
  void add(const std::string& secret);

  std::string text(std::string text) const;  // every secret value replaced
  Json value(const Json& value) const;       // strings at any depth, keys kept
  Json vars(const Json& vars) const;         // value(), and secret-named vars replaced whole
  // A --set as run.json keeps it: redacted when its name looks secret or its value holds a secret.
  bool redacts_set(const std::string& name, const std::string& value) const;
  const std::vector<std::string>& secrets() const { return secrets_; }

 private:
  std::vector<std::string> secrets_;
};

}  // namespace profagent::kernel
