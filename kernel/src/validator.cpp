#include "profagent/kernel/validator.hpp"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <set>

#include "profagent/artifact.hpp"
#include "profagent/kernel/condition.hpp"
#include "profagent/text.hpp"

namespace profagent::kernel {

namespace {

// Up to three typo suggestions, quoted for messages: 'judge' or 'fudge'.
std::vector<std::string> quoted_matches(const std::string& word, const std::vector<std::string>& candidates) {
  std::vector<std::string> out;
  for (const auto& match : close_matches(word, candidates)) out.push_back("'" + match + "'");
  return out;
}

// The JSON pointer of a config issue's path (as ConfigBlock::locations and ::resources key it).
std::string json_pointer(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& key : path) {
    out += '/';
    for (char c : key) out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  }
  return out;
}

std::string port_names(const std::vector<PortSpec>& ports) {
  std::vector<std::string> names;
  for (const auto& port : ports) names.push_back(port.name);
  return names.empty() ? "none" : join(names);
}

// Where a column inside an `until:` expression is in the file (the spec points at its first character).
SourceLocation offset(const SourceLocation& start, int column) {
  SourceLocation out = start;
  if (out.line > 0 && column > 0) out.column += column - 1;
  return out;
}

// "column 12: expected ..." -> 12 and "expected ..."; Condition::parse promises that shape.
std::pair<int, std::string> split_column(const std::string& message) {
  const std::string prefix = "column ";
  if (message.rfind(prefix, 0) == 0) {
    char* end = nullptr;
    long column = std::strtol(message.c_str() + prefix.size(), &end, 10);
    if (end && end[0] == ':' && end[1] == ' ') return {static_cast<int>(column), std::string(end + 2)};
  }
  return {0, message};
}

// Every reference a stage makes, loop bodies included (what a loop stage depends on from outside).
// A body's references to its own loop stage are errors reported elsewhere, not cycles.
void collect_refs(const StageSpec& stage, std::vector<std::string>& out) {
  for (const auto& input : stage.inputs) out.push_back(input.ref.stage);
  if (!stage.loop) return;
  const LoopSpec& loop = *stage.loop;
  for (const auto& carry : loop.carry) out.push_back(carry.ref.stage);
  std::vector<std::string> body;
  for (const auto& next : loop.next) body.push_back(next.ref.stage);
  for (const auto& body_stage : loop.stages) collect_refs(body_stage, body);
  if (loop.until) {
    auto condition = Condition::parse(loop.until->text);
    if (condition)
      for (const auto& ref : condition->references()) body.push_back(ref.stage);
  }
  if (loop.decide)
    for (const auto& input : loop.decide->inputs) body.push_back(input.ref.stage);
  for (auto& name : body)
    if (name != stage.id) out.push_back(std::move(name));
}

// For each stage of a scope, the indices of the stages of the same scope it reads from.
std::vector<std::vector<std::size_t>> scope_dependencies(const std::vector<StageSpec>& scope) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < scope.size(); ++i) index.emplace(scope[i].id, i);
  std::vector<std::vector<std::size_t>> deps(scope.size());
  for (std::size_t i = 0; i < scope.size(); ++i) {
    std::vector<std::string> refs;
    collect_refs(scope[i], refs);
    for (const auto& name : refs) {
      auto it = index.find(name);
      if (it != index.end() && std::find(deps[i].begin(), deps[i].end(), it->second) == deps[i].end())
        deps[i].push_back(it->second);
    }
  }
  return deps;
}

struct Scope {
  const std::vector<StageSpec>* stages = nullptr;
  const Scope* parent = nullptr;
  const StageSpec* loop = nullptr;  // the loop whose body this is; null at the top level
};

// What a reference resolved to: the artifact kind, "" when it exists but its kind is unknown (e.g.
// an unknown agent, already reported), nullopt when it names nothing (reported when asked).
using Kind = std::optional<std::string>;

class Validator {
 public:
  Validator(const Workflow& workflow, const Registry& registry) : workflow_(workflow), registry_(registry) {}

  std::vector<Diagnostic> run() {
    index_ids(workflow_.stages);
    Scope top{&workflow_.stages, nullptr, nullptr};
    check_scope(top);
    check_resources();
    for (const auto& output : workflow_.outputs) resolve(output.ref, top, "outputs: " + output.name, true);
    std::stable_sort(diagnostics_.begin(), diagnostics_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::make_pair(a.location.line, a.location.column) <
             std::make_pair(b.location.line, b.location.column);
    });
    return std::move(diagnostics_);
  }

 private:
  void error(const SourceLocation& where, std::string message) {
    diagnostics_.push_back({where, std::move(message)});
  }

  // Stage ids are global (loop bodies included): the executor and run directory key on them.
  void index_ids(const std::vector<StageSpec>& stages) {
    for (const auto& stage : stages) {
      if (!stage.id.empty()) {
        auto [first, inserted] = ids_.emplace(stage.id, &stage);
        if (!inserted)
          error(stage.location, "duplicate stage id '" + stage.id + "' (first defined at line " +
                                    std::to_string(first->second->location.line) + ")");
      }
      if (stage.loop) index_ids(stage.loop->stages);
    }
  }

  std::vector<std::string> all_ids() const {
    std::vector<std::string> out;
    for (const auto& [id, stage] : ids_) out.push_back(id);
    return out;
  }

  const AgentFactory* find_agent(const std::string& id, const SourceLocation& where,
                                 const std::string& what) {
    if (const AgentFactory* factory = registry_.find_agent(id)) return factory;
    std::vector<std::string> known;
    for (const auto* factory : registry_.agents()) known.push_back(factory->id);
    auto close = quoted_matches(id, known);
    std::string hint = !close.empty()  ? "did you mean " + join(close, " or ") + "?"
                       : known.empty() ? "no agents are loaded; check the plugin path"
                                       : "loaded agents: " + join(known);
    error(where, what + ": unknown agent '" + id + "' (" + hint + ")");
    return nullptr;
  }

  void check_config(const ConfigSchema& schema, const ConfigBlock& block, const std::string& what) {
    for (const auto& issue : schema.validate(block.value)) {
      std::string key = issue.path.empty() ? "" : "." + join(issue.path, ".");
      // A whole "${resources.NAME}" where the schema takes something else than a map: said so, at
      // the reference (problems inside the resource point at the resource's own lines).
      auto use = block.resources.find(json_pointer(issue.path));
      if (use != block.resources.end()) {
        const ResourceSpec* resource = workflow_.find_resource(use->second.name);
        std::string kind =
            resource && !resource->interface.empty() ? "a '" + resource->interface + "' config" : "a config";
        std::string expected = issue.message.substr(0, issue.message.find(", got "));
        error(use->second.location, what + key + ": resource '" + use->second.name + "' is " + kind +
                                        " (a map), which this key does not take (" + expected + ")");
        continue;
      }
      error(block.locate(issue.path), what + key + ": " + issue.message);
    }
  }

  void check_scope(const Scope& scope) {
    for (const auto& stage : *scope.stages) {
      if (stage.loop)
        check_loop_stage(stage, scope);
      else
        check_agent_stage(stage, scope);
    }
    check_cycles(*scope.stages);
  }

  void check_agent_stage(const StageSpec& stage, const Scope& scope) {
    const std::string what = "stage '" + stage.id + "'";
    const AgentFactory* factory =
        stage.agent.empty() ? nullptr : find_agent(stage.agent, stage.agent_location, what);
    if (factory) {
      check_config(factory->config, stage.with, what + ": with");
      check_providers(factory->config, stage.with, what + ": with");
    }
    check_inputs(stage.inputs, factory, scope, "stage '" + stage.id + "'", stage.location);
  }

  // Shared by stages and decide agents: ports exist, references resolve, kinds match, required
  // inputs are connected.
  void check_inputs(const std::vector<Binding>& inputs, const AgentFactory* factory, const Scope& scope,
                    const std::string& owner, const SourceLocation& owner_location) {
    for (const auto& input : inputs) {
      const PortSpec* port = factory ? factory->find_input(input.name) : nullptr;
      if (factory && !port)
        error(input.location, owner + ": unknown input '" + input.name + "' (inputs of agent '" +
                                  factory->id + "': " + port_names(factory->inputs) + ")");
      Kind kind = resolve(input.ref, scope, owner + ": input '" + input.name + "'", true);
      if (port && kind && !kind->empty() && !port_kinds_compatible(*kind, port->kind))
        error(input.ref.location, "input '" + input.name + "' of " + owner + " expects '" + port->kind +
                                      "', but '" + input.ref.text() + "' is '" + *kind + "'");
    }
    if (!factory) return;
    for (const auto& port : factory->inputs) {
      bool connected = std::any_of(inputs.begin(), inputs.end(),
                                   [&](const Binding& input) { return input.name == port.name; });
      if (!port.optional && !connected)
        error(owner_location,
              owner + ": required input '" + port.name + "' (" + port.kind + ") is not connected");
    }
  }

  void check_loop_stage(const StageSpec& stage, const Scope& scope) {
    const LoopSpec& loop = *stage.loop;
    const std::string what = "loop '" + stage.id + "'";
    for (const auto& carry : loop.carry)
      resolve(carry.ref, scope, what + ": carry '" + carry.name + "'", true);

    Scope body{&loop.stages, &scope, &stage};
    check_scope(body);
    const auto& carries = carry_kinds(stage, scope);
    for (const auto& next : loop.next) check_next(next, carries, body, what);
    if (loop.until) check_until(*loop.until, body, what);
    if (loop.decide) check_decide(*loop.decide, body, what);
  }

  void check_next(const Binding& next, const std::map<std::string, std::string>& carries, const Scope& body,
                  const std::string& what) {
    Kind kind = resolve(next.ref, body, what + ": next '" + next.name + "'", true);
    auto carry = carries.find(next.name);
    if (carry == carries.end()) {
      std::vector<std::string> names;
      for (const auto& binding : body.loop->loop->carry) names.push_back(binding.name);
      error(next.location, what + ": next '" + next.name +
                               "' is not a carry (carry: " + (names.empty() ? "none" : join(names)) + ")");
      return;
    }
    if (kind && !kind->empty() && !carry->second.empty() && !port_kinds_compatible(*kind, carry->second))
      error(next.ref.location, what + ": next '" + next.name + "' is '" + *kind + "' ('" + next.ref.text() +
                                   "'), but carry '" + next.name + "' is '" + carry->second + "'");
  }

  void check_until(const ConditionSpec& until, const Scope& body, const std::string& what) {
    auto condition = Condition::parse(until.text);
    if (!condition) {
      auto [column, message] = split_column(condition.status().message());
      error(offset(until.location, column), what + ": until: " + message);
      return;
    }
    for (const auto& ref : condition->references()) {
      PortRef port_ref{ref.stage, ref.port, offset(until.location, ref.column)};
      resolve(port_ref, body, what + ": until", true);
    }
  }

  void check_decide(const DecideSpec& decide, const Scope& body, const std::string& what) {
    const std::string owner = "decide agent '" + decide.agent + "' of " + what;
    const AgentFactory* factory =
        decide.agent.empty() ? nullptr : find_agent(decide.agent, decide.agent_location, what + ": decide");
    if (factory) {
      const PortSpec* decision = factory->find_output("decision");
      if (!decision || decision->kind != kinds::kDecision)
        error(decide.agent_location, what + ": decide agent '" + decide.agent +
                                         "' has no output 'decision' of kind 'decision' (outputs: " +
                                         port_names(factory->outputs) + ")");
      check_config(factory->config, decide.with, what + ": decide: with");
      check_providers(factory->config, decide.with, what + ": decide: with");
    }
    std::vector<Binding> inputs = decide.inputs;
    // The default binding only applies to an agent that has a history input; without one, the
    // missing required inputs are reported instead.
    if (inputs.empty() && (!factory || factory->find_input("history")))
      inputs.push_back({"history", PortRef{"loop", "history", decide.location}, decide.location});
    check_inputs(inputs, factory, body, owner, decide.location);
  }

  // Each resource (and `llm:` entry) names a loaded provider of its interface and matches that
  // provider's config schema, at the resource's own lines.
  void check_resources() {
    for (const auto& resource : workflow_.resources) {
      const bool llm = resource.section == "llm";
      const std::string what = (llm ? "llm '" : "resource '") + resource.name + "'";
      if (resource.interface.empty() || resource.provider_id.empty()) continue;  // the parser reported it
      const ProviderFactory* provider = registry_.find_provider(resource.interface, resource.provider_id);
      if (provider) {
        check_config(provider->config, resource.provider_config(), what);
        continue;
      }
      std::vector<std::string> known;
      for (const auto* factory : registry_.providers_of(resource.interface)) known.push_back(factory->id);
      if (known.empty() && !llm) {
        std::vector<std::string> interfaces;
        for (const auto* factory : registry_.providers())
          if (std::find(interfaces.begin(), interfaces.end(), factory->interface) == interfaces.end())
            interfaces.push_back(factory->interface);
        auto close = quoted_matches(resource.interface, interfaces);
        std::string hint = !close.empty()       ? "did you mean " + join(close, " or ") + "?"
                           : interfaces.empty() ? "no providers are loaded; check the plugin path"
                                                : "interfaces of the loaded providers: " + join(interfaces);
        error(resource.location,
              what + ": no provider of interface '" + resource.interface + "' is loaded (" + hint + ")");
        continue;
      }
      auto close = quoted_matches(resource.provider_id, known);
      std::string hint = !close.empty()  ? "did you mean " + join(close, " or ") + "?"
                         : known.empty() ? "no " + resource.interface + " providers are loaded"
                                         : resource.interface + " providers: " + join(known);
      if (llm)
        error(resource.location, what + ": unknown backend '" + resource.provider_id + "' (" + hint + ")");
      else
        error(resource.location, what + ": unknown " + resource.interface + " provider '" +
                                     resource.provider_id + "' (" + hint + ")");
    }
  }

  // --- providers named in a config (ConfigField::provider_interface / provider_key)

  // What a provider id in a config resolves to, as StageContext::make_provider resolves it: a
  // resource of that interface by name (its provider, its config under the agent's keys), else a
  // loaded provider. Null factory: not found (already reported).
  struct ProviderUse {
    const ProviderFactory* factory = nullptr;
    const ResourceSpec* resource = nullptr;
  };

  ProviderUse find_provider_use(const std::string& interface, const std::string& id, const SourceLocation& where,
                                const std::string& what) {
    ProviderUse use;
    const ResourceSpec* resource = workflow_.find_resource(id);
    if (resource && resource->interface == interface) {
      use.resource = resource;
      use.factory = registry_.find_provider(interface, resource->provider_id);
      return use;  // a resource whose provider is not loaded is reported at the resource
    }
    use.factory = registry_.find_provider(interface, id);
    if (use.factory) return use;
    std::vector<std::string> known;
    for (const auto* factory : registry_.providers_of(interface)) known.push_back(factory->id);
    std::vector<std::string> candidates = known;
    for (const auto& spec : workflow_.resources)
      if (spec.interface == interface) candidates.push_back(spec.name);
    auto close = quoted_matches(id, candidates);
    std::string hint = !close.empty()  ? "did you mean " + join(close, " or ") + "?"
                       : known.empty() ? "no " + interface + " providers are loaded; check the plugin path"
                                       : interface + " providers: " + join(known);
    std::string noun = interface == "llm" ? "backend" : interface + " provider";
    error(where, what + ": unknown " + noun + " '" + id + "' (" + hint + ")");
    return use;
  }

  // Checks `config` (the agent's keys for the provider; its nodes under `prefix` in `block`) against
  // the provider's schema, with a resource's own config underneath when the id named a resource.
  void check_provider_config(const ProviderUse& use, const Json& config,
                             const ConfigBlock& block, const std::vector<std::string>& prefix,
                             const std::string& what) {
    if (!use.factory) return;
    Json merged = use.resource ? use.resource->provider_config().value : Json::object();
    if (!merged.is_object()) merged = Json::object();
    if (config.is_object())
      for (const auto& [key, value] : config.items()) merged[key] = value;
    const std::string whose = (use.factory->interface == "llm" ? "backend '" : use.factory->interface +
                                                                                   " provider '") +
                              use.factory->id + "'" +
                              (use.resource ? " of resource '" + use.resource->name + "'" : std::string());
    for (const auto& issue : use.factory->config.validate(merged)) {
      const bool own = !issue.path.empty() && config.is_object() && config.contains(issue.path.front());
      if (use.resource && !own) continue;  // the resource's own problems are reported at the resource
      std::vector<std::string> path = prefix;
      path.insert(path.end(), issue.path.begin(), issue.path.end());
      std::string key = path.empty() ? "" : "." + join(path, ".");
      error(block.locate(path), what + key + " (" + whose + "): " + issue.message);
    }
  }

  // The fields of an agent's schema that name providers: each provider named in `block` is loaded
  // (or a resource of its interface) and its config matches the provider's schema.
  void check_providers(const ConfigSchema& schema, const ConfigBlock& block, const std::string& what) {
    if (!block.value.is_object()) return;  // reported by check_config
    for (const auto& field : schema.fields()) {
      if (field.provider_interface.empty()) continue;
      if (field.type == ConfigType::kMap)
        check_provider_block(field, block, what);
      else if (field.type == ConfigType::kString)
        check_named_provider(field, schema, block, what);
    }
  }

  // A string field naming a provider (`criterion: l1`), with the map field that configures it
  // (`criterion_config: {...}`, ConfigField::provider_key). Checked when either is in the workflow.
  void check_named_provider(const ConfigField& field, const ConfigSchema& schema, const ConfigBlock& block,
                            const std::string& what) {
    const ConfigField* companion = nullptr;
    for (const auto& other : schema.fields())
      if (other.type == ConfigType::kMap && other.provider_key == field.name) companion = &other;
    const bool named = block.value.contains(field.name);
    const bool configured = companion && block.value.contains(companion->name) &&
                            !block.value.at(companion->name).is_null();
    if (!named && !configured) return;
    const Json id = named ? block.value.at(field.name) : field.default_value.value_or(Json());
    if (!id.is_string()) return;  // a type error, reported by check_config (or no default)
    const Json config = configured ? block.value.at(companion->name) : Json::object();
    if (!config.is_object()) return;  // reported by check_config
    const std::vector<std::string> id_path = {named ? field.name : companion->name};
    ProviderUse use = find_provider_use(field.provider_interface, id.get<std::string>(), block.locate(id_path),
                                        what + "." + field.name);
    // Without a config map the provider gets an empty config (or its resource's): still checked, for
    // required keys.
    check_provider_config(use, config, block, {companion ? companion->name : field.name}, what);
  }

  // A map field that is a whole provider block (`dataset: {format: idx, images: ...}`): its id key
  // (provider_id_key) names the provider, the other keys are the provider's config. An empty map is
  // "none"; a whole "${resources.NAME}" was checked at the resource.
  void check_provider_block(const ConfigField& field, const ConfigBlock& block, const std::string& what) {
    if (!block.value.contains(field.name)) return;
    const Json& value = block.value.at(field.name);
    if (!value.is_object() || value.empty()) return;
    if (block.resources.count(json_pointer({field.name}))) return;
    const std::string key = provider_id_key(field.provider_interface);
    const std::string where = what + "." + field.name;
    auto id = value.find(key);
    if (id == value.end() || !id->is_string() || id->get<std::string>().empty()) {
      std::vector<std::string> known;
      for (const auto* factory : registry_.providers_of(field.provider_interface)) known.push_back(factory->id);
      error(id == value.end() ? block.locate({field.name}) : block.locate({field.name, key}),
            where + ": needs '" + key + "', a string naming the " + field.provider_interface + " provider (" +
                (known.empty() ? "none is loaded" : join(known)) + ")");
      return;
    }
    ProviderUse use = find_provider_use(field.provider_interface, id->get<std::string>(),
                                        block.locate({field.name, key}), where + "." + key);
    Json config = value;
    config.erase(key);
    check_provider_config(use, config, block, {field.name}, what);
  }

  // --- references

  bool encloses(const Scope& scope, const StageSpec& loop_stage) const {
    for (const Scope* s = &scope; s; s = s->parent)
      if (s->loop == &loop_stage) return true;
    return false;
  }

  // The kinds of a loop's carries, resolved in the scope around the loop ("" when unknown).
  const std::map<std::string, std::string>& carry_kinds(const StageSpec& loop_stage, const Scope& outer) {
    auto cached = carry_kinds_.find(&loop_stage);
    if (cached != carry_kinds_.end()) return cached->second;
    auto& kinds = carry_kinds_[&loop_stage];  // empty while in progress guards against carry cycles
    std::map<std::string, std::string> computed;
    for (const auto& carry : loop_stage.loop->carry) {
      computed[carry.name] = "";
      Kind kind = resolve(carry.ref, outer, "", false);
      if (kind) computed[carry.name] = *kind;
    }
    kinds = std::move(computed);
    return kinds;
  }

  Kind resolve(const PortRef& ref, const Scope& scope, const std::string& what, bool report) {
    auto fail = [&](std::string message) -> Kind {
      if (report) error(ref.location, what + ": " + message);
      return std::nullopt;
    };
    if (ref.stage == "loop") return resolve_loop_ref(ref, scope, fail);

    for (const Scope* s = &scope; s; s = s->parent) {
      for (const auto& stage : *s->stages) {
        if (stage.id != ref.stage) continue;
        if (!stage.loop) return resolve_agent_output(stage, ref, fail);
        if (encloses(scope, stage))
          return fail("a stage inside loop '" + stage.id + "' cannot read '" + ref.text() + "'; use 'loop." +
                      ref.port + "'");
        const auto& carries = carry_kinds(stage, *s);
        if (ref.port == "history") return std::string(kinds::kHistory);
        auto carry = carries.find(ref.port);
        if (carry != carries.end()) return carry->second;
        std::vector<std::string> outputs;
        for (const auto& binding : stage.loop->carry) outputs.push_back(binding.name);
        outputs.push_back("history");
        return fail("loop '" + stage.id + "' has no output '" + ref.port + "' (outputs: " + join(outputs) +
                    ")");
      }
    }
    auto elsewhere = ids_.find(ref.stage);
    if (elsewhere != ids_.end())
      return fail("'" + ref.text() + "': stage '" + ref.stage +
                  "' is inside a loop body that is not visible from here (outside a loop, read the loop's "
                  "outputs: <loop>.<carry> or <loop>.history)");
    auto close = quoted_matches(ref.stage, all_ids());
    return fail("'" + ref.text() + "' refers to no stage '" + ref.stage + "'" +
                (close.empty() ? std::string() : " (did you mean " + join(close, " or ") + "?)"));
  }

  template <class Fail>
  Kind resolve_agent_output(const StageSpec& stage, const PortRef& ref, Fail& fail) {
    const AgentFactory* factory = registry_.find_agent(stage.agent);
    if (!factory) return std::string();  // reported at the stage
    if (const PortSpec* port = factory->find_output(ref.port)) return port->kind;
    return fail("stage '" + stage.id + "' has no output '" + ref.port + "' (outputs of agent '" +
                factory->id + "': " + port_names(factory->outputs) + ")");
  }

  template <class Fail>
  Kind resolve_loop_ref(const PortRef& ref, const Scope& scope, Fail& fail) {
    if (!scope.loop)
      return fail("'" + ref.text() + "': 'loop.' references are only valid inside a loop body");
    if (ref.port == "history") return std::string(kinds::kHistory);
    if (ref.port == "iteration") return std::string(kinds::kJson);
    const auto& carries = carry_kinds(*scope.loop, *scope.parent);
    auto carry = carries.find(ref.port);
    if (carry != carries.end()) return carry->second;
    std::vector<std::string> names;
    for (const auto& binding : scope.loop->loop->carry) names.push_back("loop." + binding.name);
    names.push_back("loop.history");
    names.push_back("loop.iteration");
    return fail("'" + ref.text() + "': loop '" + scope.loop->id + "' has no carry '" + ref.port +
                "' (available: " + join(names) + ")");
  }

  // --- cycles

  void check_cycles(const std::vector<StageSpec>& scope) {
    auto deps = scope_dependencies(scope);
    std::vector<int> color(scope.size(), 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::size_t> path;
    std::function<void(std::size_t)> visit = [&](std::size_t i) {
      color[i] = 1;
      path.push_back(i);
      for (std::size_t dep : deps[i]) {
        if (color[dep] == 1) {
          auto start = std::find(path.begin(), path.end(), dep);
          std::vector<std::string> names;
          for (auto it = start; it != path.end(); ++it) names.push_back(scope[*it].id);
          names.push_back(scope[dep].id);
          error(scope[dep].location, "cycle: " + join(names, " -> ") +
                                         " (stages outside a loop cannot depend "
                                         "on each other in a circle)");
        } else if (color[dep] == 0) {
          visit(dep);
        }
      }
      path.pop_back();
      color[i] = 2;
    };
    for (std::size_t i = 0; i < scope.size(); ++i)
      if (color[i] == 0) visit(i);
  }

  const Workflow& workflow_;
  const Registry& registry_;
  std::vector<Diagnostic> diagnostics_;
  std::map<std::string, const StageSpec*> ids_;  // first definition of each id
  std::map<const StageSpec*, std::map<std::string, std::string>> carry_kinds_;
};

}  // namespace

std::vector<Diagnostic> validate_workflow(const Workflow& workflow, const Registry& registry) {
  return Validator(workflow, registry).run();
}

Json redacted_resource(const ResourceSpec& resource, const Registry& registry) {
  const ProviderFactory* provider = registry.find_provider(resource.interface, resource.provider_id);
  auto config = provider ? provider->config.resolve(resource.provider_config().value)
                         : Result<Config>(Status(ErrorCode::kNotFound, ""));
  if (!config) return resource.value.value;  // only on a workflow that did not validate
  Json out = {{provider_id_key(resource.interface), resource.provider_id}};
  const Json redacted = config->redacted();
  for (const auto& [key, value] : redacted.items()) out[key] = value;
  return out;
}

Json redacted_with(const ConfigBlock& with, const AgentFactory* factory, const Workflow& workflow,
                   const Registry& registry) {
  auto config =
      factory ? factory->config.resolve(with.value) : Result<Config>(Status(ErrorCode::kNotFound, ""));
  if (!config) return with.value;
  Json out = config->redacted();
  for (const auto& [pointer, use] : with.resources) {
    const ResourceSpec* resource = workflow.find_resource(use.name);
    Json::json_pointer at(pointer);
    if (resource && out.contains(at)) out[at] = redacted_resource(*resource, registry);
  }
  return out;
}

std::vector<const StageSpec*> topological_order(const std::vector<StageSpec>& scope) {
  auto deps = scope_dependencies(scope);
  std::vector<bool> placed(scope.size(), false);
  std::vector<const StageSpec*> order;
  // Each round takes the first stage in file order whose dependencies are placed: stable.
  while (order.size() < scope.size()) {
    bool progressed = false;
    for (std::size_t i = 0; i < scope.size(); ++i) {
      if (placed[i]) continue;
      bool ready = std::all_of(deps[i].begin(), deps[i].end(),
                               [&](std::size_t dep) { return placed[dep] && dep != i; });
      if (!ready) continue;
      placed[i] = true;
      order.push_back(&scope[i]);
      progressed = true;
      break;
    }
    if (progressed) continue;
    // A cycle (only in a workflow that did not validate): keep the rest in file order.
    for (std::size_t i = 0; i < scope.size(); ++i)
      if (!placed[i]) order.push_back(&scope[i]);
    break;
  }
  return order;
}

}  // namespace profagent::kernel
