#pragma once
// The parsed workflow (DESIGN §4). Values are already interpolated (${vars.x}, ${env:NAME},
// ${run.dir}, ${resources.NAME}); every node keeps its file:line:col so that the validator and the
// executor can point at the YAML that caused an error.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/kernel/diagnostics.hpp"

namespace profagent::kernel {

// "stage.port" — or "loop.<carry>", "loop.history", "loop.iteration" inside a loop body.
struct PortRef {
  std::string stage;
  std::string port;
  SourceLocation location;
  std::string text() const { return stage + "." + port; }
};

struct Binding {  // one entry of `inputs:`, `carry:`, `next:` or `outputs:`
  std::string name;
  PortRef ref;
  SourceLocation location;  // of the key
};

// A value of a `with:` block that was exactly "${resources.NAME}": replaced by the resource's config.
struct ResourceUse {
  std::string name;
  SourceLocation location;  // of the "${resources.NAME}" scalar
};

// A `with:` block (or a resource's config): the interpolated JSON value and where each of its
// nodes came from, keyed by JSON pointer ("" for the block itself, "/ratio", "/layers/0"). The nodes
// of a substituted resource keep the resource's own locations; the pointer of the reference itself
// keeps the reference's location.
struct ConfigBlock {
  Json value = Json::object();
  std::map<std::string, SourceLocation> locations;
  SourceLocation location;  // of the block (or of the stage when the block is absent)
  std::map<std::string, ResourceUse> resources;  // JSON pointer -> the resource substituted there
  SourceLocation locate(const std::vector<std::string>& path) const;  // nearest known node
};

// An `until:` expression: comparisons of summary values, numbers, strings and booleans joined with
// and / or / not, e.g. "evaluate.metrics.accuracy >= 0.9 or loop.iteration >= 3".
struct ConditionSpec {
  std::string text;
  SourceLocation location;
};

struct StageSpec;

struct DecideSpec {  // an agent run after each iteration; its `decision` output may stop the loop
  std::string agent;
  SourceLocation agent_location;
  std::vector<Binding> inputs;  // defaults to { history: loop.history } when empty
  ConfigBlock with;
  SourceLocation location;
};

struct LoopSpec {
  int max_iterations = 1;
  SourceLocation location;
  std::vector<Binding> carry;  // loop state: name -> initial value (reference outside the body)
  std::vector<Binding> next;   // name -> value for the next iteration (reference inside the body)
  std::optional<ConditionSpec> until;
  std::optional<DecideSpec> decide;
  std::vector<StageSpec> stages;  // the body
};

struct StageSpec {
  std::string id;
  SourceLocation location;  // of the stage's mapping
  std::string agent;        // empty for a loop stage
  SourceLocation agent_location;
  std::vector<Binding> inputs;
  ConfigBlock with;
  std::shared_ptr<LoopSpec> loop;  // set for a loop stage
  bool is_loop() const { return loop != nullptr; }
};

// The key of a resource's config that names its provider: `format` for "dataset" (what stages'
// dataset blocks use), `backend` for "llm" (what `llm:` entries use), `id` for any other interface.
std::string provider_id_key(const std::string& interface);

// A named provider config: one entry of the top-level `resources:` map, or of `llm:` (an alias whose
// entries are resources of interface "llm"). Stages use it as a whole `with:` value,
// "${resources.NAME}", or name it where an agent asks for a provider by id (e.g. `llm: planner`).
struct ResourceSpec {
  std::string name;
  std::string section;      // "resources" or "llm": where it was declared (messages say which)
  std::string interface;    // `provider:` ("llm" for entries of `llm:`)
  std::string provider_id;  // the value of provider_id_key(interface); empty when missing (reported)
  ConfigBlock value;        // the entry without `provider:`: what "${resources.NAME}" becomes
  SourceLocation location;  // of the name
  // The provider's own config: `value` without the id key (what the provider's schema checks).
  ConfigBlock provider_config() const;
};

struct Workflow {
  std::string file;         // as given on the command line
  std::string source_text;  // the YAML as read, saved into the run directory
  int version = 1;
  std::string name;
  Json vars = Json::object();  // after --set overrides
  std::map<std::string, SourceLocation> var_locations;
  std::vector<std::string> plugin_paths;  // resolved against the workflow file's directory
  std::vector<ResourceSpec> resources;    // `resources:` and `llm:` entries, in file order
  const ResourceSpec* find_resource(const std::string& name) const;
  std::vector<StageSpec> stages;
  std::vector<Binding> outputs;
};

struct ParseOptions {
  std::vector<std::pair<std::string, std::string>> sets;  // --set k=v, in order
  std::string run_dir = "${run.dir}";  // the value of ${run.dir}; kept literal for --validate/--plan
};

}  // namespace profagent::kernel
