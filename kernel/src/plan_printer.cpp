#include "plan_printer.hpp"

#include "secret_redaction.hpp"

#include "profagent/kernel/validator.hpp"

namespace profagent::kernel {

namespace {

std::string bindings_text(const std::vector<Binding>& bindings) {
  std::string out;
  for (const auto& b : bindings) out += (out.empty() ? "" : ", ") + b.name + " <- " + b.ref.text();
  return out;
}

void format_scope(const Workflow& workflow, const std::vector<StageSpec>& stages, const Registry& registry,
                  const std::string& number_prefix, const std::string& indent, std::string& out) {
  int index = 0;
  for (const StageSpec* stage : topological_order(stages)) {
    std::string number = number_prefix + std::to_string(++index);
    if (stage->is_loop()) {
      const LoopSpec& loop = *stage->loop;
      out += indent + number + ". " + stage->id + "  loop, at most " + std::to_string(loop.max_iterations) +
             " iteration(s)\n";
      if (!loop.carry.empty()) out += indent + "     carry: " + bindings_text(loop.carry) + "\n";
      if (!loop.next.empty()) out += indent + "     next:  " + bindings_text(loop.next) + "\n";
      if (loop.until) out += indent + "     until: " + loop.until->text + "\n";
      if (loop.decide) out += indent + "     decide: agent " + loop.decide->agent + "\n";
      format_scope(workflow, loop.stages, registry, number + ".", indent + "    ", out);
      continue;
    }
    const AgentFactory* factory = registry.find_agent(stage->agent);
    out += indent + number + ". " + stage->id + "  agent " + stage->agent;
    if (factory && !factory->role.empty()) out += " (" + factory->role + ")";
    out += "\n";
    if (!stage->inputs.empty()) out += indent + "     inputs: " + bindings_text(stage->inputs) + "\n";
    out += indent + "     with: " + redacted_with(stage->with, factory, workflow, registry).dump() + "\n";
    if (factory) {
      std::string outputs;
      for (const auto& port : factory->outputs) outputs += (outputs.empty() ? "" : ", ") + port.name + ":" + port.kind;
      out += indent + "     outputs: " + outputs + "\n";
    }
  }
}

}  // namespace

std::string format_plan(const Workflow& workflow, const Registry& registry) {
  std::string out = "workflow " + (workflow.name.empty() ? std::string("(unnamed)") : workflow.name) + " (" +
                     workflow.file + ")\n";
  if (!workflow.vars.empty()) out += "vars: " + SecretRedactor(workflow).vars(workflow.vars).dump() + "\n";
  for (const auto& resource : workflow.resources) {
    Json shown = {{"provider", resource.interface}};
    const Json redacted = redacted_resource(resource, registry);
    for (const auto& [key, value] : redacted.items()) shown[key] = value;
    out += "resource " + resource.name + ": " + shown.dump() + "\n";
  }
  format_scope(workflow, workflow.stages, registry, "", "", out);
  if (!workflow.outputs.empty()) out += "outputs: " + bindings_text(workflow.outputs) + "\n";
  return out;
}

}  // namespace profagent::kernel
