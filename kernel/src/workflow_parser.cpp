#include "profagent/kernel/workflow_parser.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "profagent/text.hpp"

namespace profagent::kernel {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kTopLevelKeys = {"version",   "name", "vars",   "plugin_paths",
                                                "resources", "llm",  "stages", "outputs"};
const std::vector<std::string> kStageKeys = {"id", "agent", "loop", "stages", "inputs", "with"};
const std::vector<std::string> kLoopKeys = {"max_iterations", "carry", "next", "until", "decide"};
const std::vector<std::string> kDecideKeys = {"agent", "with", "inputs"};
const char* const kYamlStrTag = "tag:yaml.org,2002:str";

bool is_identifier(const std::string& text) {
  static const std::regex kIdentifier("[A-Za-z_][A-Za-z0-9_-]*");
  return std::regex_match(text, kIdentifier);
}

// JSON pointer escaping (RFC 6901), so that keys with '/' or '~' still locate.
std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

// "an int", "a float"...: how a --set type error names the var's type.
std::string type_phrase(const Json& value) {
  if (value.is_boolean()) return "a bool";
  if (value.is_number_integer()) return "an int";
  if (value.is_number()) return "a float";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "a list";
  if (value.is_object()) return "a map";
  return "null";
}

// Embedded interpolations become text: strings as they are, everything else as compact JSON.
std::string to_text(const Json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// Types an unquoted scalar the way YAML 1.2's core schema does (the subset workflows need).
Json type_plain_scalar(const std::string& text) {
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (std::regex_match(text, kInt)) {
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (errno != ERANGE) return static_cast<std::int64_t>(value);
    return std::strtod(text.c_str(), nullptr);  // too large for an int: keep it as a number anyway
  }
  if (std::regex_match(text, kFloat)) return std::strtod(text.c_str(), nullptr);
  return text;
}

// One YAML node of a --set value as JSON, typed the way convert() types the workflow's own nodes.
Result<Json> set_node_to_json(const YAML::Node& node) {
  if (node.IsScalar()) {
    if (node.Tag() == "!" || node.Tag() == kYamlStrTag) return Json(node.Scalar());
    return type_plain_scalar(node.Scalar());
  }
  if (node.IsSequence()) {
    Json array = Json::array();
    for (const auto& item : node) {
      PROFAGENT_ASSIGN_OR_RETURN(Json element, set_node_to_json(item));
      array.push_back(std::move(element));
    }
    return array;
  }
  if (node.IsMap()) {
    Json object = Json::object();
    for (auto entry = node.begin(); entry != node.end(); ++entry) {
      const YAML::Node key = entry->first;
      if (!key.IsScalar()) return Status(ErrorCode::kInvalidArgument, "a map key must be a plain name");
      if (object.contains(key.Scalar()))
        return Status(ErrorCode::kInvalidArgument, "duplicate key '" + key.Scalar() + "'");
      PROFAGENT_ASSIGN_OR_RETURN(Json element, set_node_to_json(entry->second));
      object[key.Scalar()] = std::move(element);
    }
    return object;
  }
  return Json(nullptr);
}

}  // namespace

// A --set value is one YAML node: a plain scalar (typed: int, float, bool, null, else a string), a
// quoted scalar (a string), or a flow list or map (`[1,3,224,224]`, `{normalize: sum}`). Block
// collections are refused: `--set note=a: b` would otherwise silently become a map.
Result<Json> read_set_value(const std::string& text) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // The text is one line, so yaml-cpp's (0-based) column alone places the problem.
    std::string column = e.mark.is_null() ? "" : " at column " + std::to_string(e.mark.column + 1);
    return Status(ErrorCode::kInvalidArgument,
                  "not a YAML value: " + e.msg + column + " (lists and maps take flow syntax: [a, b], {k: v})");
  }
  if ((node.IsSequence() || node.IsMap()) && node.Style() != YAML::EmitterStyle::Flow) {
    const std::string what = node.IsMap() ? "a YAML block map: write a flow map {key: value}"
                                          : "a YAML block list: write a flow list [a, b]";
    return Status(ErrorCode::kInvalidArgument, "reads as " + what + ", or quote the text for a string");
  }
  return set_node_to_json(node);
}

std::string provider_id_key(const std::string& interface) {
  if (interface == "dataset") return "format";
  if (interface == "llm") return "backend";
  return "id";
}

ConfigBlock ResourceSpec::provider_config() const {
  ConfigBlock block = value;
  const std::string key = provider_id_key(interface);
  if (block.value.is_object()) block.value.erase(key);
  block.locations.erase("/" + pointer_token(key));
  return block;
}

const ResourceSpec* Workflow::find_resource(const std::string& name) const {
  for (const auto& resource : resources)
    if (resource.name == name) return &resource;
  return nullptr;
}

SourceLocation ConfigBlock::locate(const std::vector<std::string>& path) const {
  SourceLocation best = location;
  auto root = locations.find("");
  if (root != locations.end()) best = root->second;
  std::string pointer;
  for (const auto& key : path) {
    pointer += "/" + pointer_token(key);
    auto it = locations.find(pointer);
    if (it != locations.end()) best = it->second;
  }
  return best;
}

namespace {

using Locations = std::map<std::string, SourceLocation>;

// One key: value of a YAML mapping, with the key's own position.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

class Parser {
 public:
  Parser(std::string file, std::string text, const ParseOptions& options)
      : file_(std::move(file)), text_(std::move(text)), options_(options) {}

  ParseOutcome run();

 private:
  enum class VarState { kPending, kResolving, kDone, kFailed };
  struct Var {
    Json value;           // raw until resolved
    Locations locations;  // JSON pointer (relative to the var) -> location
    SourceLocation location;
    VarState state = VarState::kPending;
  };
  // What a ${vars.x} lookup found: the value, or nothing (reported here, or already reported).
  struct VarLookup {
    const Json* value = nullptr;
  };

  // --- diagnostics and locations
  void error(const SourceLocation& where, std::string message) {
    outcome_.diagnostics.push_back({where, std::move(message)});
  }
  SourceLocation at(const YAML::Mark& mark) const {
    if (mark.line < 0) return {file_, 1, 1};
    return {file_, mark.line + 1, mark.column + 1};
  }
  SourceLocation at(const YAML::Node& node) const { return at(node.Mark()); }
  SourceLocation value_location(const Entry& entry) const;

  // --- generic structure
  std::vector<Entry> read_map(const YAML::Node& map, const SourceLocation& where,
                              const std::vector<std::string>& known, const std::string& what);
  static const Entry* find(const std::vector<Entry>& entries, const std::string& key);
  bool expect_map(const YAML::Node& node, const SourceLocation& where, const std::string& what);
  std::optional<std::string> read_string(const Entry& entry, const std::string& what);
  Json convert(const YAML::Node& node, const std::string& pointer, const SourceLocation& where,
               Locations& locations);
  ConfigBlock read_config(const Entry* entry, const SourceLocation& fallback, const std::string& what);

  // --- interpolation
  bool interpolate_tree(Json& value, Locations& locations, const std::string& pointer,
                        const SourceLocation& fallback);
  bool substitute_resource(const std::string& name, Json& value, Locations& locations,
                           const std::string& pointer, const SourceLocation& where);
  bool interpolate(Json& value, const SourceLocation& where);
  bool expand(const std::string& expression, const SourceLocation& where, std::string& out);
  bool lookup_var(const std::string& name, const SourceLocation& where, const Json*& value);
  Json interpolated_scalar(const Entry& entry);

  // --- vars
  void read_vars(const Entry& entry);
  void apply_set(const std::string& name, const std::string& text);
  std::optional<Json> declared_type_of(const std::string& name, int depth) const;
  void resolve_vars();

  // --- workflow parts
  void read_version(const Entry* entry, const SourceLocation& root);
  void read_plugin_paths(const Entry& entry);
  void read_resources(const Entry& entry, const std::string& section);
  void check_resource_names();
  void read_stages(const YAML::Node& node, const SourceLocation& where, const std::string& owner,
                   std::vector<StageSpec>& out);
  std::optional<StageSpec> read_stage(const YAML::Node& node);
  std::shared_ptr<LoopSpec> read_loop(const Entry& entry, const std::string& stage_id);
  std::optional<DecideSpec> read_decide(const Entry& entry, const std::string& stage_id);
  std::optional<ConditionSpec> read_until(const Entry& entry);
  std::optional<int> read_max_iterations(const Entry& entry, const std::string& stage_id);
  std::vector<Binding> read_bindings(const Entry& entry, const std::string& what);
  std::optional<PortRef> read_ref(const YAML::Node& node, const SourceLocation& where,
                                  const std::string& what);

  std::string file_;
  std::string text_;
  const ParseOptions& options_;
  ParseOutcome outcome_;
  std::map<std::string, Var> vars_;
  std::vector<std::string> var_order_;
  std::vector<std::string> resolving_;  // the chain of vars being resolved, to name a cycle
  // Where "${resources.NAME}" substitutions are recorded while a `with:` block is interpolated;
  // null elsewhere (vars, resources, llm, ...), where a resource reference is an error.
  std::map<std::string, ResourceUse>* resource_uses_ = nullptr;
};

// yaml-cpp places an empty value (`key:` with nothing after it) at the start of the next line, so
// errors about it point at the key instead.
SourceLocation Parser::value_location(const Entry& entry) const {
  const YAML::Mark& mark = entry.value.Mark();
  if (entry.value.IsNull() && (mark.line < 0 || mark.line != entry.key_node.Mark().line))
    return at(entry.key_node);
  return at(mark);
}

std::vector<Entry> Parser::read_map(const YAML::Node& map, const SourceLocation& where,
                                    const std::vector<std::string>& known, const std::string& what) {
  std::vector<Entry> entries;
  if (!expect_map(map, where, what)) return entries;
  std::map<std::string, int> first_line;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: yaml-cpp's iterator hands out a temporary proxy, so references into it dangle.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      error(at(key), what + ": a key must be a plain name");
      continue;
    }
    std::string name = key.Scalar();
    if (!known.empty() && std::find(known.begin(), known.end(), name) == known.end()) {
      error(at(key), "unknown key '" + name + "' in " + what + " (known keys: " + join(known) + ")");
      continue;
    }
    auto [seen, inserted] = first_line.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      error(at(key), "duplicate key '" + name + "' in " + what + " (first at line " +
                         std::to_string(seen->second) + ")");
      continue;
    }
    entries.push_back({name, key, value});
  }
  return entries;
}

const Entry* Parser::find(const std::vector<Entry>& entries, const std::string& key) {
  for (const auto& entry : entries)
    if (entry.key == key) return &entry;
  return nullptr;
}

bool Parser::expect_map(const YAML::Node& node, const SourceLocation& where, const std::string& what) {
  if (node.IsMap()) return true;
  error(where, what + " must be a mapping");
  return false;
}

std::optional<std::string> Parser::read_string(const Entry& entry, const std::string& what) {
  if (entry.value.IsScalar()) return entry.value.Scalar();
  error(value_location(entry), what + " must be a string");
  return std::nullopt;
}

Json Parser::convert(const YAML::Node& node, const std::string& pointer, const SourceLocation& where,
                     Locations& locations) {
  locations[pointer] = where;
  if (node.IsScalar()) {
    // Quoted scalars ("!") and explicit !!str stay strings; only plain ones ("?") are typed.
    if (node.Tag() == "!" || node.Tag() == kYamlStrTag) return node.Scalar();
    return type_plain_scalar(node.Scalar());
  }
  if (node.IsSequence()) {
    Json array = Json::array();
    std::size_t index = 0;
    for (const auto& item : node) {
      array.push_back(convert(item, pointer + "/" + std::to_string(index), at(item), locations));
      ++index;
    }
    return array;
  }
  if (node.IsMap()) {
    Json object = Json::object();
    for (const auto& entry : read_map(node, where, {}, "a mapping")) {
      object[entry.key] =
          convert(entry.value, pointer + "/" + pointer_token(entry.key), value_location(entry), locations);
    }
    return object;
  }
  return nullptr;
}

ConfigBlock Parser::read_config(const Entry* entry, const SourceLocation& fallback, const std::string& what) {
  ConfigBlock block;
  block.location = fallback;
  if (!entry) return block;
  block.location = value_location(*entry);
  if (entry->value.IsNull()) return block;
  if (!expect_map(entry->value, block.location, what)) return block;
  block.value = convert(entry->value, "", block.location, block.locations);
  resource_uses_ = &block.resources;  // a `with:` block is where "${resources.NAME}" may stand
  interpolate_tree(block.value, block.locations, "", block.location);
  resource_uses_ = nullptr;
  return block;
}

// ---------------------------------------------------------------------------------------------
// Interpolation

// The NAME of a string that is exactly "${resources.NAME}".
std::optional<std::string> whole_resource_reference(const std::string& text) {
  const std::string prefix = "${resources.";
  if (text.size() <= prefix.size() + 1 || text.rfind(prefix, 0) != 0 || text.find('}') != text.size() - 1)
    return std::nullopt;
  return text.substr(prefix.size(), text.size() - prefix.size() - 1);
}

bool Parser::interpolate_tree(Json& value, Locations& locations, const std::string& pointer,
                              const SourceLocation& fallback) {
  auto found = locations.find(pointer);
  const SourceLocation where = found == locations.end() ? fallback : found->second;
  if (value.is_string()) {
    if (auto name = whole_resource_reference(value.get<std::string>()))
      return substitute_resource(*name, value, locations, pointer, where);
    return interpolate(value, where);
  }
  bool ok = true;
  if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i)
      ok = interpolate_tree(value[i], locations, pointer + "/" + std::to_string(i), where) && ok;
  } else if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it)
      ok = interpolate_tree(it.value(), locations, pointer + "/" + pointer_token(it.key()), where) && ok;
  }
  return ok;
}

// "${resources.NAME}" as a whole value: the resource's config (without `provider:`), already
// interpolated, with the resource's own locations under `pointer` so that problems inside it point
// at the resource; the reference itself keeps its location (and is recorded for the validator).
bool Parser::substitute_resource(const std::string& name, Json& value, Locations& locations,
                                 const std::string& pointer, const SourceLocation& where) {
  const std::string reference = "${resources." + name + "}";
  if (!resource_uses_) {
    error(where, "'" + reference +
                     "' can only be used as a whole value inside a stage's (or decide's) 'with:', not here");
    return false;
  }
  const ResourceSpec* resource = outcome_.workflow.find_resource(name);
  if (!resource) {
    std::vector<std::string> names;
    for (const auto& r : outcome_.workflow.resources) names.push_back(r.name);
    std::vector<std::string> close;
    for (const auto& match : close_matches(name, names)) close.push_back("'" + match + "'");
    std::string hint = !close.empty()  ? "did you mean " + join(close, " or ") + "?"
                       : names.empty() ? "no resources are declared; add one under 'resources:'"
                                       : "resources: " + join(names);
    error(where, "unknown resource '" + name + "' in " + reference + " (" + hint + ")");
    return false;
  }
  value = resource->value.value;
  const std::string below = pointer + "/";
  for (auto it = locations.lower_bound(below); it != locations.end() && it->first.rfind(below, 0) == 0;)
    it = locations.erase(it);
  for (const auto& [relative, location] : resource->value.locations)
    if (!relative.empty()) locations[pointer + relative] = location;
  locations[pointer] = where;
  (*resource_uses_)[pointer] = ResourceUse{name, where};
  return true;
}

bool Parser::interpolate(Json& value, const SourceLocation& where) {
  const std::string text = value.get<std::string>();
  if (text.find('$') == std::string::npos) return true;
  std::string out;
  bool ok = true;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {  // the escape for a literal "${"
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    std::size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      error(where, "unterminated '${' in '" + text + "' (write '$${' for a literal '${')");
      return false;
    }
    std::string expression = text.substr(i + 2, close - i - 2);
    if (expression.rfind("resources.", 0) == 0) {
      const std::string reference = "${" + expression + "}";
      if (i == 0 && close + 1 == text.size())  // whole, but not where a config map can go
        error(where,
              "'" + reference +
                  "' can only be used as a whole value inside a stage's (or decide's) 'with:', not here");
      else
        error(where, "'" + reference + "' inside a larger string ('" + text +
                         "'): a resource is a config map, so it can only be a whole value, \"" + reference +
                         "\"");
      return false;
    }
    // A scalar that is exactly one ${vars.x} keeps the var's type (a float stays a float).
    if (i == 0 && close + 1 == text.size() && expression.rfind("vars.", 0) == 0) {
      const Json* var = nullptr;
      if (!lookup_var(expression.substr(5), where, var)) return false;
      value = *var;
      return true;
    }
    std::string piece;
    ok = expand(expression, where, piece) && ok;
    out += piece;
    i = close + 1;
  }
  value = out;
  return ok;
}

bool Parser::expand(const std::string& expression, const SourceLocation& where, std::string& out) {
  if (expression == "run.dir") {
    out = options_.run_dir;
    return true;
  }
  if (expression.rfind("vars.", 0) == 0) {
    const Json* var = nullptr;
    if (!lookup_var(expression.substr(5), where, var)) return false;
    out = to_text(*var);
    return true;
  }
  if (expression.rfind("env:", 0) == 0) {
    std::string name = expression.substr(4);
    std::optional<std::string> fallback;
    std::size_t dash = name.find(":-");
    if (dash != std::string::npos) {
      fallback = name.substr(dash + 2);
      name = name.substr(0, dash);
    }
    const char* env = std::getenv(name.c_str());
    // Like the shell's ${NAME:-default}: an empty variable also takes the default.
    if (env && (*env || !fallback)) {
      out = env;
      return true;
    }
    if (fallback) {
      out = *fallback;
      return true;
    }
    error(where, "environment variable '" + name + "' is not set (in ${env:" + name + "})");
    return false;
  }
  error(where, "unknown interpolation '${" + expression +
                   "}' (use ${vars.NAME}, ${env:NAME}, ${env:NAME:-default}, ${run.dir} or "
                   "${resources.NAME}; '$${' for a literal '${')");
  return false;
}

bool Parser::lookup_var(const std::string& name, const SourceLocation& where, const Json*& value) {
  auto it = vars_.find(name);
  if (it == vars_.end()) {
    std::string declared = var_order_.empty() ? "none declared" : "declared: " + join(var_order_);
    error(where, "undefined var '" + name + "' in ${vars." + name + "} (" + declared + ")");
    return false;
  }
  Var& var = it->second;
  if (var.state == VarState::kResolving) {
    auto start = std::find(resolving_.begin(), resolving_.end(), name);
    std::vector<std::string> chain(start, resolving_.end());
    chain.push_back(name);
    error(where, "vars form a cycle: " + join(chain, " -> "));
    var.state = VarState::kFailed;
    return false;
  }
  if (var.state == VarState::kPending) {
    var.state = VarState::kResolving;
    resolving_.push_back(name);
    bool ok = interpolate_tree(var.value, var.locations, "", var.location);
    resolving_.pop_back();
    // A cycle may have marked it failed from below; keep that.
    if (var.state == VarState::kResolving) var.state = ok ? VarState::kDone : VarState::kFailed;
  }
  if (var.state == VarState::kFailed) return false;  // already reported where it went wrong
  value = &var.value;
  return true;
}

Json Parser::interpolated_scalar(const Entry& entry) {
  Locations locations;
  SourceLocation where = value_location(entry);
  Json value = convert(entry.value, "", where, locations);
  interpolate_tree(value, locations, "", where);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Vars

void Parser::read_vars(const Entry& entry) {
  if (entry.value.IsNull()) return;
  for (const auto& var_entry : read_map(entry.value, value_location(entry), {}, "vars")) {
    if (!is_identifier(var_entry.key)) {
      error(at(var_entry.key_node), "invalid var name '" + var_entry.key +
                                        "': use letters, digits, '_' and '-', starting with a letter or '_'");
      continue;
    }
    Var var;
    var.location = value_location(var_entry);
    var.value = convert(var_entry.value, "", var.location, var.locations);
    vars_.emplace(var_entry.key, std::move(var));
    var_order_.push_back(var_entry.key);
  }
}

// The type a var has before interpolation; a var that is exactly "${vars.y}" has y's type.
std::optional<Json> Parser::declared_type_of(const std::string& name, int depth) const {
  auto it = vars_.find(name);
  if (it == vars_.end() || depth > 32) return std::nullopt;
  const Json& value = it->second.value;
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (text.size() > 8 && text.rfind("${vars.", 0) == 0 && text.back() == '}' &&
        text.find('}') == text.size() - 1) {
      auto other = declared_type_of(text.substr(7, text.size() - 8), depth + 1);
      if (other) return other;
    }
  }
  return value;
}

void Parser::apply_set(const std::string& name, const std::string& text) {
  const SourceLocation where{"--set", 0, 0};
  const std::string prefix = "--set " + name + "=" + text + ": ";
  auto it = vars_.find(name);
  if (it == vars_.end()) {
    std::string declared = var_order_.empty() ? "none declared" : "declared: " + join(var_order_);
    error(where, prefix + "unknown var '" + name + "' (" + declared + ")");
    return;
  }
  Json declared = declared_type_of(name, 0).value_or(Json(nullptr));
  Json value;
  if (declared.is_string()) {
    value = text;  // a string var takes the text as written, "5" and "[a]" included
  } else {
    Result<Json> read = read_set_value(text);
    if (!read) {
      error(where, prefix + read.status().message());
      return;
    }
    value = std::move(read).value();
    if (declared.is_number_float() && value.is_number()) value = value.get<double>();  // "1" keeps it a float
    const bool fits = declared.is_null() || (declared.is_boolean() && value.is_boolean()) ||
                      (declared.is_number_integer() && value.is_number_integer()) ||
                      (declared.is_number_float() && value.is_number_float()) ||
                      (declared.is_array() && value.is_array()) || (declared.is_object() && value.is_object());
    if (!fits) {
      error(where, prefix + "var '" + name + "' is " + type_phrase(declared) + ", '" + text + "' reads as " +
                       type_phrase(value));
      return;
    }
  }
  Var& var = it->second;
  var.value = std::move(value);
  var.location = where;
  var.locations = {{"", where}};
}

void Parser::resolve_vars() {
  for (const auto& name : var_order_) {
    const Json* ignored = nullptr;
    lookup_var(name, vars_[name].location, ignored);
  }
  for (const auto& name : var_order_) {
    const Var& var = vars_[name];
    outcome_.workflow.vars[name] = var.state == VarState::kDone ? var.value : Json(nullptr);
    outcome_.workflow.var_locations[name] = var.location;
  }
}

// ---------------------------------------------------------------------------------------------
// The workflow

void Parser::read_version(const Entry* entry, const SourceLocation& root) {
  if (!entry) {
    error(root, "the workflow has no 'version' (add 'version: 1')");
    return;
  }
  Json value = interpolated_scalar(*entry);
  if (!value.is_number_integer() || value.get<std::int64_t>() != 1) {
    error(value_location(*entry), "unsupported workflow version " + to_text(value) + " (expected 1)");
    return;
  }
  outcome_.workflow.version = 1;
}

void Parser::read_plugin_paths(const Entry& entry) {
  if (entry.value.IsNull()) return;
  if (!entry.value.IsSequence()) {
    error(value_location(entry), "plugin_paths must be a list of directories or library files");
    return;
  }
  fs::path base = fs::path(file_).parent_path();
  for (const auto& item : entry.value) {
    Locations locations;
    Json value = convert(item, "", at(item), locations);
    if (!interpolate_tree(value, locations, "", at(item))) continue;
    if (!value.is_string() || value.get<std::string>().empty()) {
      error(at(item), "plugin_paths entries must be non-empty strings");
      continue;
    }
    fs::path path = value.get<std::string>();
    if (path.is_relative() && !base.empty()) path = (base / path).lexically_normal();
    outcome_.workflow.plugin_paths.push_back(path.string());
  }
}

std::string with_article(const std::string& word) {
  // "an llm": the acronym is read letter by letter.
  const bool vowel =
      (!word.empty() && std::string("aeiouAEIOU").find(word[0]) != std::string::npos) || word == "llm";
  return (vowel ? "an " : "a ") + word;
}

// `resources:` (each entry says its interface with `provider:`) and its alias `llm:` (every entry is
// of interface "llm").
void Parser::read_resources(const Entry& entry, const std::string& section) {
  if (entry.value.IsNull()) return;
  const bool llm = section == "llm";
  for (const auto& item : read_map(entry.value, value_location(entry), {}, section)) {
    const std::string what = (llm ? "llm '" : "resource '") + item.key + "'";
    if (!llm && !is_identifier(item.key)) {
      error(at(item.key_node), "invalid resource name '" + item.key +
                                   "': use letters, digits, '_' and '-', starting with a letter or '_'");
      continue;
    }
    ResourceSpec spec;
    spec.name = item.key;
    spec.section = section;
    spec.location = at(item.key_node);
    spec.value.location = value_location(item);
    spec.value.locations[""] = spec.value.location;
    // Kept even when broken (reported here), so that references to it are not "unknown" too.
    if (expect_map(item.value, spec.value.location, what)) {
      Json map = convert(item.value, "", spec.value.location, spec.value.locations);
      interpolate_tree(map, spec.value.locations, "", spec.value.location);
      auto location_of = [&](const std::string& key) {
        auto it = spec.value.locations.find("/" + pointer_token(key));
        return it == spec.value.locations.end() ? spec.location : it->second;
      };
      if (llm) {
        spec.interface = "llm";
      } else if (!map.contains("provider")) {
        error(spec.location,
              what + " needs 'provider' (the interface it is a config for: dataset, llm, ...)");
      } else if (!map["provider"].is_string() || map["provider"].get<std::string>().empty()) {
        error(location_of("provider"), what + ": provider must be an interface name (dataset, llm, ...)");
      } else {
        spec.interface = map["provider"].get<std::string>();
      }
      if (!llm) {
        spec.value.locations.erase("/provider");
        map.erase("provider");
      }
      if (!spec.interface.empty()) {
        const std::string key = provider_id_key(spec.interface);
        const std::string id_of = "the id of " + with_article(spec.interface) + " provider";
        if (!map.contains(key))
          error(spec.location, what + " needs '" + key + "' (" + id_of + ")");
        else if (!map[key].is_string() || map[key].get<std::string>().empty())
          error(location_of(key), what + ": " + key + " must be " + id_of + ", got " + to_text(map[key]));
        else
          spec.provider_id = map[key].get<std::string>();
      }
      spec.value.value = std::move(map);
    }
    outcome_.workflow.resources.push_back(std::move(spec));
  }
}

// One namespace for `resources:` and `llm:`: a name declared in both is reported at the later one.
void Parser::check_resource_names() {
  auto& resources = outcome_.workflow.resources;
  std::stable_sort(resources.begin(), resources.end(), [](const ResourceSpec& a, const ResourceSpec& b) {
    return std::make_pair(a.location.line, a.location.column) <
           std::make_pair(b.location.line, b.location.column);
  });
  std::map<std::string, const ResourceSpec*> first;
  std::vector<ResourceSpec> unique;
  for (auto& resource : resources) {
    auto [seen, inserted] = first.emplace(resource.name, &resource);
    if (inserted) continue;
    error(resource.location, "duplicate resource name '" + resource.name + "' under '" + resource.section +
                                 ":' (also declared under '" + seen->second->section + ":' at line " +
                                 std::to_string(seen->second->location.line) +
                                 "; llm: entries are resources too)");
  }
  for (auto& resource : resources)
    if (first[resource.name] == &resource) unique.push_back(std::move(resource));
  resources = std::move(unique);
}

void Parser::read_stages(const YAML::Node& node, const SourceLocation& where, const std::string& owner,
                         std::vector<StageSpec>& out) {
  if (!node.IsSequence()) {
    error(where, owner + " 'stages' must be a list of stages");
    return;
  }
  if (node.size() == 0) {
    error(where, owner + " 'stages' is empty");
    return;
  }
  for (const auto& item : node) {
    auto stage = read_stage(item);
    if (stage) out.push_back(std::move(*stage));
  }
}

std::optional<StageSpec> Parser::read_stage(const YAML::Node& node) {
  StageSpec stage;
  stage.location = at(node);
  // The id names the stage in messages about its other keys, so peek at it first.
  std::string what = "stage";
  if (node.IsMap() && node["id"] && node["id"].IsScalar()) what = "stage '" + node["id"].Scalar() + "'";
  auto entries = read_map(node, stage.location, kStageKeys, what);
  if (!node.IsMap()) return std::nullopt;

  const Entry* id = find(entries, "id");
  if (!id) {
    error(stage.location, "a stage needs an 'id'");
  } else if (auto text = read_string(*id, "a stage id")) {
    stage.id = *text;
    if (!is_identifier(stage.id))
      error(value_location(*id), "invalid stage id '" + stage.id +
                                     "': use letters, digits, '_' and '-', starting with a letter or '_'");
    else if (stage.id == "loop")
      error(value_location(*id), "'loop' is reserved (loop.<name> refers to the enclosing loop's state)");
  }

  const Entry* agent = find(entries, "agent");
  const Entry* loop = find(entries, "loop");
  const Entry* body = find(entries, "stages");
  if (agent && loop) error(at(loop->key_node), what + " has both 'agent' and 'loop'; give one");
  if (!agent && !loop) error(stage.location, what + " needs 'agent' (or 'loop' with 'stages')");
  if (body && !loop) error(at(body->key_node), what + ": 'stages' is only allowed in a loop stage");

  if (agent) {
    stage.agent_location = value_location(*agent);
    if (auto text = read_string(*agent, what + ": agent")) stage.agent = *text;
  }
  if (const Entry* inputs = find(entries, "inputs")) {
    if (loop)
      error(at(inputs->key_node), what + ": a loop stage takes no 'inputs' (use loop.carry)");
    else
      stage.inputs = read_bindings(*inputs, what + ": inputs");
  }
  const Entry* with = find(entries, "with");
  if (with && loop) error(at(with->key_node), what + ": a loop stage takes no 'with' (give it to decide:)");
  stage.with = read_config(loop ? nullptr : with, stage.location, what + ": with");

  if (loop) {
    stage.loop = read_loop(*loop, stage.id);
    if (!body)
      error(at(loop->key_node), what + " needs 'stages' (the loop body)");
    else
      read_stages(body->value, value_location(*body), what, stage.loop->stages);
  }
  return stage;
}

std::shared_ptr<LoopSpec> Parser::read_loop(const Entry& entry, const std::string& stage_id) {
  const std::string what = "loop '" + stage_id + "'";
  auto loop = std::make_shared<LoopSpec>();
  loop->location = value_location(entry);
  auto entries = read_map(entry.value, loop->location, kLoopKeys, what);
  if (!entry.value.IsMap()) return loop;

  if (const Entry* max = find(entries, "max_iterations")) {
    if (auto value = read_max_iterations(*max, stage_id)) loop->max_iterations = *value;
  } else {
    error(loop->location, what + " needs 'max_iterations'");
  }
  if (const Entry* carry = find(entries, "carry")) loop->carry = read_bindings(*carry, what + ": carry");
  for (const auto& binding : loop->carry) {
    if (binding.name == "history" || binding.name == "iteration")
      error(binding.location, what + ": carry '" + binding.name + "' is reserved (loop." + binding.name +
                                  " is provided by the loop)");
    else if (!is_identifier(binding.name))
      error(binding.location, what + ": invalid carry name '" + binding.name + "'");
  }
  if (const Entry* next = find(entries, "next")) loop->next = read_bindings(*next, what + ": next");
  if (const Entry* until = find(entries, "until")) loop->until = read_until(*until);
  if (const Entry* decide = find(entries, "decide")) loop->decide = read_decide(*decide, stage_id);
  return loop;
}

std::optional<int> Parser::read_max_iterations(const Entry& entry, const std::string& stage_id) {
  Json value = interpolated_scalar(entry);
  if (value.is_string()) value = type_plain_scalar(value.get<std::string>());  // e.g. from ${env:N}
  if (value.is_number_integer() && value.get<std::int64_t>() >= 1 && value.get<std::int64_t>() <= 1000000)
    return static_cast<int>(value.get<std::int64_t>());
  error(value_location(entry),
        "loop '" + stage_id + "': max_iterations must be an integer >= 1, got " + to_text(value));
  return std::nullopt;
}

std::optional<ConditionSpec> Parser::read_until(const Entry& entry) {
  ConditionSpec spec;
  spec.location = value_location(entry);
  // Point at the expression's first character, so that column offsets inside it line up.
  const auto pos = entry.value.Mark().pos;
  if (entry.value.IsScalar() && pos >= 0 && static_cast<std::size_t>(pos) < text_.size() &&
      (text_[pos] == '"' || text_[pos] == '\''))
    spec.location.column += 1;
  if (!entry.value.IsScalar()) {
    error(spec.location, "until must be a condition expression (a string)");
    return std::nullopt;
  }
  Json value = entry.value.Scalar();
  if (!interpolate(value, spec.location)) return std::nullopt;
  spec.text = to_text(value);
  return spec;
}

std::optional<DecideSpec> Parser::read_decide(const Entry& entry, const std::string& stage_id) {
  const std::string what = "loop '" + stage_id + "': decide";
  DecideSpec decide;
  decide.location = value_location(entry);
  auto entries = read_map(entry.value, decide.location, kDecideKeys, what);
  if (!entry.value.IsMap()) return std::nullopt;
  if (const Entry* agent = find(entries, "agent")) {
    decide.agent_location = value_location(*agent);
    if (auto text = read_string(*agent, what + ": agent")) decide.agent = *text;
  } else {
    error(decide.location, what + " needs 'agent'");
  }
  if (const Entry* inputs = find(entries, "inputs"))
    decide.inputs = read_bindings(*inputs, what + ": inputs");
  decide.with = read_config(find(entries, "with"), decide.location, what + ": with");
  return decide;
}

std::vector<Binding> Parser::read_bindings(const Entry& entry, const std::string& what) {
  std::vector<Binding> bindings;
  if (entry.value.IsNull()) return bindings;
  for (const auto& item : read_map(entry.value, value_location(entry), {}, what)) {
    auto ref = read_ref(item.value, value_location(item), what + "." + item.key);
    if (!ref) continue;
    bindings.push_back({item.key, *ref, at(item.key_node)});
  }
  return bindings;
}

std::optional<PortRef> Parser::read_ref(const YAML::Node& node, const SourceLocation& where,
                                        const std::string& what) {
  if (!node.IsScalar()) {
    error(where, what + " must be a reference 'stage.port'");
    return std::nullopt;
  }
  const std::string text = node.Scalar();
  std::size_t dot = text.find('.');
  if (dot == std::string::npos || text.find('.', dot + 1) != std::string::npos ||
      !is_identifier(text.substr(0, dot)) || !is_identifier(text.substr(dot + 1))) {
    error(where, what + ": '" + text + "' is not a reference (expected 'stage.port')");
    return std::nullopt;
  }
  return PortRef{text.substr(0, dot), text.substr(dot + 1), where};
}

ParseOutcome Parser::run() {
  outcome_.workflow.file = file_;
  outcome_.workflow.source_text = text_;
  YAML::Node root;
  try {
    root = YAML::Load(text_);
  } catch (const YAML::ParserException& e) {
    error(at(e.mark), "YAML syntax error: " + e.msg);
    return std::move(outcome_);
  } catch (const YAML::Exception& e) {
    error({file_, 1, 1}, std::string("YAML error: ") + e.what());
    return std::move(outcome_);
  }
  const SourceLocation root_location{file_, 1, 1};
  if (root.IsNull()) {
    error(root_location, "the workflow is empty (expected 'version: 1' and 'stages:')");
    return std::move(outcome_);
  }
  auto entries = read_map(root, at(root), kTopLevelKeys, "the workflow");
  if (!root.IsMap()) return std::move(outcome_);

  // Vars first: every other value may interpolate them.
  if (const Entry* vars = find(entries, "vars")) read_vars(*vars);
  for (const auto& [name, text] : options_.sets) apply_set(name, text);
  resolve_vars();

  Workflow& workflow = outcome_.workflow;
  read_version(find(entries, "version"), root_location);
  if (const Entry* name = find(entries, "name")) {
    if (auto text = read_string(*name, "name")) workflow.name = *text;
  }
  if (const Entry* paths = find(entries, "plugin_paths")) read_plugin_paths(*paths);
  // Before the stages: their `with:` blocks may use "${resources.NAME}".
  if (const Entry* resources = find(entries, "resources")) read_resources(*resources, "resources");
  if (const Entry* llm = find(entries, "llm")) read_resources(*llm, "llm");
  check_resource_names();
  if (const Entry* stages = find(entries, "stages"))
    read_stages(stages->value, value_location(*stages), "the workflow's", workflow.stages);
  else
    error(root_location, "the workflow has no 'stages'");
  if (const Entry* outputs = find(entries, "outputs")) workflow.outputs = read_bindings(*outputs, "outputs");

  // Reported in file order; command-line problems (line 0) first.
  std::stable_sort(outcome_.diagnostics.begin(), outcome_.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::make_pair(a.location.line, a.location.column) <
                            std::make_pair(b.location.line, b.location.column);
                   });
  return std::move(outcome_);
}

}  // namespace

ParseOutcome parse_workflow_text(const std::string& text, const std::string& file_name,
                                 const ParseOptions& options) {
  return Parser(file_name, text, options).run();
}

ParseOutcome parse_workflow_file(const std::string& path, const ParseOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    ParseOutcome outcome;
    outcome.workflow.file = path;
    Diagnostic diagnostic;  // built in steps: GCC 12 -O3 warns (falsely) on the braced temporary
    diagnostic.location.file = path;
    diagnostic.message = "cannot read workflow file '" + path + "': " + std::strerror(EISDIR);
    outcome.diagnostics.push_back(std::move(diagnostic));
    return outcome;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int reason = errno;
    ParseOutcome outcome;
    outcome.workflow.file = path;
    Diagnostic diagnostic;
    diagnostic.location.file = path;
    diagnostic.message = "cannot read workflow file '" + path + "': " + std::strerror(reason ? reason : ENOENT);
    outcome.diagnostics.push_back(std::move(diagnostic));
    return outcome;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_workflow_text(buffer.str(), path, options);
}

}  // namespace profagent::kernel
