// The kernel's SecretRedactor (kernel/src/secret_redaction.hpp): which values count as secrets (keys
// named by api_key_env / api_key_file anywhere in the workflow, secret-looking environment variables)
// and how vars and --set values are redacted. The end-to-end check is tests/llm/test_llm_run.cpp.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "secret_redaction.hpp"
#include "test_support.hpp"

namespace profagent::test {

TEST_CASE("SecretRedactor: keys named by api_key_env/api_key_file and secret-looking variables are scrubbed") {
  TempDir dir("redactor");
  std::ofstream(dir.path() / "key.txt") << "  file-key-0123456789\n";
  setenv("PROFAGENT_TEST_PLAIN_NAME", "env-named-by-api-key-env", 1);  // a name that does not look secret
  setenv("PROFAGENT_TEST_SERVICE_TOKEN", "token-value-abcdef", 1);     // a name that does
  setenv("PROFAGENT_TEST_SHORT_KEY", "1234567", 1);                    // 7 characters: too short to scrub
  kernel::Workflow workflow;
  kernel::ResourceSpec resource;
  resource.name = "gpt";
  resource.interface = "llm";
  resource.value.value = {{"backend", "openai"}, {"api_key_env", "PROFAGENT_TEST_PLAIN_NAME"}};
  workflow.resources.push_back(resource);
  kernel::StageSpec stage;
  stage.id = "ask";
  stage.with.value = {{"llm", {{"backend", "openai"}, {"api_key_file", (dir.path() / "key.txt").string()}}}};
  workflow.stages.push_back(stage);
  const kernel::SecretRedactor redactor(workflow);
  unsetenv("PROFAGENT_TEST_PLAIN_NAME");
  unsetenv("PROFAGENT_TEST_SERVICE_TOKEN");
  unsetenv("PROFAGENT_TEST_SHORT_KEY");

  CHECK(redactor.text("a env-named-by-api-key-env b") == "a *** b");
  CHECK(redactor.text("file-key-0123456789") == "***");  // trimmed, as the backends read it
  CHECK(redactor.text("Bearer token-value-abcdef, again token-value-abcdef") == "Bearer ***, again ***");
  CHECK(redactor.text("1234567 stays") == "1234567 stays");

  const Json vars = {{"api_key", "anything"}, {"api_key_env", "OPENAI_API_KEY"}, {"note", "x token-value-abcdef"},
                     {"nested", {{"list", {"file-key-0123456789"}}}}};
  const Json shown = redactor.vars(vars);
  CHECK(shown["api_key"] == "***");                   // the name looks secret: replaced whole
  CHECK(shown["api_key_env"] == "OPENAI_API_KEY");    // a variable's name is not a secret
  CHECK(shown["note"] == "x ***");
  CHECK(shown["nested"]["list"][0] == "***");

  CHECK(redactor.redacts_set("password", "short"));
  CHECK(redactor.redacts_set("note", "with token-value-abcdef inside"));
  CHECK_FALSE(redactor.redacts_set("limit", "1000"));
  CHECK_FALSE(redactor.redacts_set("key_file", "/etc/key.txt"));
}

}  // namespace profagent::test
