// SecretRedactor (see secret_redaction.hpp).
#include "secret_redaction.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "profagent/fs.hpp"
#include "profagent/text.hpp"

extern char** environ;

namespace profagent::kernel {

namespace {

constexpr std::size_t kShortest = 8;  // shorter values ("1", "true") would redact ordinary text

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
  return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool looks_like_secret_env(const std::string& name) {
  const std::string key = upper(name);
  for (const char* word : {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"})
    if (key.find(word) != std::string::npos) return true;
  return false;
}

// api_key_env / api_key_file values in a config, at any depth.
void collect_key_sources(const Json& value, SecretRedactor& redactor) {
  if (value.is_array()) {
    for (const auto& element : value) collect_key_sources(element, redactor);
    return;
  }
  if (!value.is_object()) return;
  for (const auto& [key, element] : value.items()) {
    if (key == "api_key_env" && element.is_string()) {
      if (const char* secret = std::getenv(element.get<std::string>().c_str())) redactor.add(trim(secret));
    } else if (key == "api_key_file" && element.is_string()) {
      if (auto text = read_file(element.get<std::string>())) redactor.add(trim(text.value()));
    } else {
      collect_key_sources(element, redactor);
    }
  }
}

void collect_stage_sources(const std::vector<StageSpec>& stages, SecretRedactor& redactor) {
  for (const auto& stage : stages) {
    collect_key_sources(stage.with.value, redactor);
    if (!stage.loop) continue;
    collect_stage_sources(stage.loop->stages, redactor);
    if (stage.loop->decide) collect_key_sources(stage.loop->decide->with.value, redactor);
  }
}

}  // namespace

bool looks_like_secret_name(const std::string& name) {
  const std::string key = upper(name);
  for (const char* harmless : {"_ENV", "_FILE", "_PATH", "_DIR"})
    if (ends_with(key, harmless)) return false;
  if (looks_like_secret_env(key)) return true;
  return key.find("AUTH") != std::string::npos;
}

SecretRedactor::SecretRedactor(const Workflow& workflow) {
  for (char** entry = environ; entry && *entry; ++entry) {
    const std::string text = *entry;
    const auto eq = text.find('=');
    if (eq != std::string::npos && looks_like_secret_env(text.substr(0, eq))) add(text.substr(eq + 1));
  }
  for (const auto& resource : workflow.resources) collect_key_sources(resource.value.value, *this);
  collect_stage_sources(workflow.stages, *this);
}

void SecretRedactor::add(const std::string& secret) {
  if (secret.size() < kShortest || std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  secrets_.push_back(secret);
  // Longest first, so a secret containing another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string SecretRedactor::text(std::string text) const {
  for (const auto& secret : secrets_)
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
      text.replace(at, secret.size(), kRedacted);
  return text;
}

Json SecretRedactor::value(const Json& value) const {
  if (value.is_string()) return text(value.get<std::string>());
  if (value.is_array() || value.is_object()) {
    Json out = value;
    for (auto& element : out) element = this->value(element);
    return out;
  }
  return value;
}

Json SecretRedactor::vars(const Json& vars) const {
  Json out = value(vars);
  if (out.is_object())
    for (auto& [name, element] : out.items())
      if (looks_like_secret_name(name)) element = kRedacted;
  return out;
}

bool SecretRedactor::redacts_set(const std::string& name, const std::string& value) const {
  return looks_like_secret_name(name) || text(value) != value;
}

}  // namespace profagent::kernel
