#include "profiler.hpp"

#include "profile_artifact.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <algorithm>
#include <map>

#include "profagent/agent.hpp"
#include "profagent/log.hpp"
#include "profagent/phases.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/profile/dynamic_profile.hpp"
#include "profagent/profile/roofline.hpp"
#include "profagent/profile/static_profile.hpp"
#include "profagent/torch/quantized_engine.hpp"
#include "profagent/torch/threads.hpp"

namespace profagent::agents {

using namespace torch_tk;

namespace {

using torch_tk::DynamicProfile;
using torch_tk::StaticProfile;


std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// 25600000 → "25.6M": the table is read by people.
std::string human(double value) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int unit = 0;
  while (std::abs(value) >= 1000 && unit < 4) {
    value /= 1000;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f}", value) : fmt::format("{:.3g}{}", value, units[unit]);
}

// One row per layer: the static profile's layers in execution order, then layers only the dynamic
// profile saw (none when both attribute alike; a fused op may give MACs to a sublayer that has no
// time of its own, e.g. an attention's out_proj).
Json merge_layers(const StaticProfile& statics, const DynamicProfile& dynamic, const torch_tk::Roofline* roofline,
                  bool bytes_measured) {
  Json layers = Json::array();
  std::map<std::string, bool> seen;
  auto row = [&](const torch_tk::LayerProfile* s, const torch_tk::LayerTiming* d, const std::string& name) {
    Json layer;
    layer["name"] = name;
    layer["kind"] = s ? s->kind : "unknown";
    layer["params"] = s ? s->params : 0;
    layer["param_bytes"] = s ? s->param_bytes : 0;
    layer["macs"] = s ? s->macs : 0;
    layer["other_elements"] = s ? s->other_elements : 0;
    layer["activation_bytes"] = s ? s->activation_bytes : 0;
    layer["ops"] = d ? d->ops : 0;
    layer["latency_ms"] = d ? d->ms : 0.0;
    layer["latency_p50_ms"] = d ? d->p50_ms : 0.0;
    layer["latency_p90_ms"] = d ? d->p90_ms : 0.0;
    layer["latency_share"] = d ? d->share : 0.0;
    layer["peak_bytes"] = d ? d->peak_bytes : 0;
    layer["live_peak_bytes"] = d ? d->live_peak_bytes : 0;
    // Bytes moved: every top-level op's tensor inputs read once (weights included) and outputs written
    // once, as the traced forward saw them; without them (debug build, no trace), the static estimate:
    // parameters + buffers + the activations the layer writes.
    std::int64_t bytes = 0;
    if (bytes_measured && d) bytes = d->bytes_read + d->bytes_written;
    if (bytes == 0 && s) bytes = s->param_bytes + s->buffer_bytes + s->activation_bytes;
    layer["bytes_moved"] = bytes;
    const double flops = 2.0 * static_cast<double>(s ? s->macs : 0);
    const double seconds = (d ? d->ms : 0.0) / 1000.0;
    torch_tk::Roofline none;
    none.peak_gflops = 1;
    none.bandwidth_gbs = 1;
    auto point = torch_tk::place_on_roofline(roofline ? *roofline : none, flops, static_cast<double>(bytes), seconds);
    layer["intensity"] = point.intensity;
    layer["bound"] = roofline ? point.bound : "unknown";
    if (roofline) {
      layer["attainable_gflops"] = point.attainable_gflops;
      layer["achieved_gflops"] = point.achieved_gflops;
      layer["attained_fraction"] = point.attained_fraction;
    }
    layers.push_back(std::move(layer));
    seen[name] = true;
  };
  for (const auto& s : statics.layers) row(&s, dynamic.find(s.name), s.name);
  for (const auto& d : dynamic.layers)
    if (!seen.count(d.name)) row(nullptr, &d, d.name);
  return layers;
}

Json bottlenecks_of(const Json& layers, int top_k) {
  std::vector<const Json*> order;
  for (const Json& layer : layers) order.push_back(&layer);
  std::stable_sort(order.begin(), order.end(), [](const Json* a, const Json* b) {
    return (*a)["latency_ms"].get<double>() > (*b)["latency_ms"].get<double>();
  });
  Json out = Json::array();
  for (int i = 0; i < top_k && i < static_cast<int>(order.size()); ++i) {
    const Json& layer = *order[static_cast<std::size_t>(i)];
    Json entry{{"rank", i + 1},
               {"name", layer["name"]},
               {"kind", layer["kind"]},
               {"latency_ms", layer["latency_ms"]},
               {"latency_share", layer["latency_share"]},
               {"macs", layer["macs"]},
               {"intensity", layer["intensity"]},
               {"bound", layer["bound"]}};
    if (layer.contains("attained_fraction")) entry["attained_fraction"] = layer["attained_fraction"];
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace

const OptionsSchema<ProfileOptions>& profile_options_schema() {
  static const OptionsSchema<ProfileOptions> schema = [] {
    using O = ProfileOptions;
    OptionsSchema<O> s;
    s.field("warmup", &O::warmup).min(0).describe("untimed forwards before timing");
    s.field("repeats", &O::repeats)
        .min(1)
        .describe("timed profiled forwards (and as many bare forwards, interleaved, for sum_ratio)");
    s.field("threads", &O::threads)
        .min(0)
        .describe("intra-op threads while profiling (restored afterwards); 0: unchanged. Recorded in the profile");
    s.field("batch_size", &O::batch_size).min(1).describe("the batch dimension of the input");
    ConfigField dimension;
    dimension.type = ConfigType::kInt;
    dimension.min = 1;
    s.field("input_shape", &O::input_shape)
        .element(dimension)
        .min(1)
        .describe("the input shape (e.g. [1, 3, 224, 224]) when no `shapes` input is connected");
    s.field("device", &O::device, ConfigType::kEnum).choices({"cpu", "cuda"}).describe("where to profile");
    s.field("trace", &O::trace).describe("write trace.json (Chrome trace of one forward)");
    s.field("memory", &O::memory).describe("measure per-layer and whole-model peak memory");
    s.field("roofline", &O::roofline).describe("place layers on this machine's roofline (measured once, then cached)");
    s.field("roofline_cache", &O::roofline_cache, ConfigType::kString)
        .describe("the roofline cache file; empty: $XDG_CACHE_HOME/profagent/roofline.json (~/.cache/...)");
    s.field("top_k", &O::top_k).min(1).describe("layers in the bottleneck ranking and the report table");
    s.field("seed", &O::seed).min(0).describe("seed of the random input");
    return s;
  }();
  return schema;
}

Result<std::vector<InputSpec>> profile_input_specs(const Json* shape_spec, const Json& model_metadata,
                                                   const ProfileOptions& options) {
  InputSources sources;
  if (shape_spec != nullptr) {
    PROFAGENT_ASSIGN_OR_RETURN(sources.shapes, input_specs_from_shape_spec(*shape_spec));
  }
  sources.input_shape = options.input_shape;
  sources.model_metadata = model_metadata;
  return resolve_input_specs(sources, options.batch_size, "profiling");
}

namespace {


}  // namespace

Result<ProfileResult> profile_model(const torch::jit::Module& module, const std::vector<InputSpec>& specs,
                                    const ProfileOptions& options, const std::string& model_name,
                                    AgentContext* phases) {
  auto preparing = phase_if(phases, "prepare");
  const std::string who = "profile of " + model_name;
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(options.device);
  } catch (const std::exception&) {
    return Status(ErrorCode::kInvalidArgument, who + ": unknown device '" + options.device + "'");
  }
  if (device.is_cuda() && !torch::cuda::is_available())
    return Status(ErrorCode::kUnsupported, who + ": device cuda asked for, but no CUDA device is available");
  // The static profile and the roofline run under the same count as the dynamic profile, so every
  // figure in the document is for one setting (every pool, OpenBLAS's too; restored after).
  ThreadsGuard threads(options.threads);

  // The profile runs on the device asked for; a model elsewhere is profiled through a moved copy.
  torch::jit::Module model = module;
  PROFAGENT_ASSIGN_OR_RETURN(model, prepare_module(module, device, model_name));
  const std::vector<torch::Tensor> tensors = make_inputs(specs, options.batch_size,
                                                         options.seed, device);
  const std::vector<torch::jit::IValue> inputs(tensors.begin(), tensors.end());

  torch_tk::StaticProfileOptions static_options;
  static_options.model_name = model_name;
  std::string input_text;
  for (const auto& spec : specs) input_text += (input_text.empty() ? "" : ", ") + shape_text(spec.shape);
  preparing.reset();
  auto profiling = phase_if(phases, "static profile");
  auto static_result = torch_tk::static_profile(model, inputs, static_options);
  profiling.reset();
  if (!static_result)
    return Status(static_result.status().code(), static_result.status().message() + " (input " + input_text + ")");
  StaticProfile statics = std::move(static_result).value();

  torch_tk::DynamicProfileOptions dynamic_options;
  dynamic_options.model_name = model_name;
  dynamic_options.warmup = options.warmup;
  dynamic_options.repeats = options.repeats;
  dynamic_options.memory = options.memory;
  // The trace forward also measures the bytes each layer moves, which the roofline needs.
  dynamic_options.trace = options.trace || options.roofline;
  // Warm-up, attribution forward, timed forwards and summary, in one engine call: each a phase.
  if (phases) {
    dynamic_options.on_part = [phases](const std::string& part, double seconds) {
      phases->record_phase("dynamic profile: " + part, seconds);
    };
  }
  PROFAGENT_ASSIGN_OR_RETURN(DynamicProfile dynamic, torch_tk::dynamic_profile(model, inputs, dynamic_options));

  std::optional<torch_tk::Roofline> roofline;
  auto measuring = phase_if(phases, "roofline");
  if (options.roofline) {
    torch_tk::RooflineOptions roofline_options;
    roofline_options.threads = at::get_num_threads();
    roofline_options.device = device.str();
    roofline_options.cache_path = options.roofline_cache;
    auto measured = torch_tk::load_or_measure_roofline(roofline_options);
    if (!measured) return std::move(measured).take_status().with_context(who);
    roofline = std::move(measured).value();
  }
  measuring.reset();
  auto documenting = phase_if(phases, "document");

  Json doc;
  doc["model"] = model_name;
  Json shapes = Json::array();
  for (const auto& spec : specs) shapes.push_back({{"shape", spec.shape}, {"dtype", scalar_type_name(spec.dtype)}});
  doc["input_shapes"] = shapes;
  doc["device"] = dynamic.device;
  doc["threads"] = dynamic.threads;
  doc["method"] = dynamic.method;
  doc["method_description"] =
      "one untimed forward attributes each top-level op to the module whose code ran it (interpreter module "
      "hierarchy); in the timed forwards each top-level op is stamped at start and end (nested ops run without "
      "callbacks) and charged its own interval plus the gap since the previous op ended, to the module of the op "
      "at the same position (per-op attribution in every forward if the op sequence changes); the head/tail gap "
      "is unattributed (gap_ms); latency_ms = mean charge over the middle half of the profiled forwards (ranked "
      "by wall time), latency_p50_ms/latency_p90_ms = the layer's own percentiles; sum_ratio = sum of latency_ms "
      "/ bare forward p50 (bare and profiled forwards alternate at the same thread count)";
  doc["sum_ratio"] = dynamic.sum_ratio;
  doc["gap_ms"] = dynamic.gap_ms;
  doc["bookkeeping_ms"] = dynamic.bookkeeping_ms;
  doc["memory_method"] = dynamic.memory_method;
  const bool bytes_measured = dynamic.shapes_recorded;
  doc["intensity_method"] = bytes_measured
                                ? "2*MACs / (tensor bytes read by the layer's ops, weights included, + bytes written)"
                                : "2*MACs / (parameter + buffer bytes + activation bytes written)";
  const double bare_p50 = dynamic.bare.samples_ms.empty() ? dynamic.profiled.p50_ms : dynamic.bare.p50_ms;
  const double bare_p90 = dynamic.bare.samples_ms.empty() ? dynamic.profiled.p90_ms : dynamic.bare.p90_ms;
  doc["total"] = {{"params", statics.params},
                  {"param_bytes", statics.param_bytes},
                  {"buffer_bytes", statics.buffer_bytes},
                  {"macs", statics.macs},
                  {"flops", 2 * statics.macs},
                  {"other_ops", statics.other_ops},
                  {"activation_bytes", statics.activation_bytes},
                  {"latency_ms", bare_p50},
                  {"latency_p90_ms", bare_p90},
                  {"sum_of_layers_ms", dynamic.sum_of_layers_ms},
                  {"peak_bytes", dynamic.peak_bytes}};
  Json static_json = statics.to_json();
  doc["kinds"] = static_json["kinds"];
  doc["layers"] = merge_layers(statics, dynamic, roofline ? &*roofline : nullptr, bytes_measured);
  doc["bottlenecks"] = bottlenecks_of(doc["layers"], options.top_k);
  doc["roofline"] = roofline ? roofline->to_json() : Json();
  Json dynamic_json = dynamic.to_json();
  dynamic_json.erase("layers");
  doc["dynamic"] = dynamic_json;
  doc["static"] = {{"seconds", statics.seconds},
                   {"attribution", statics.attribution},
                   {"unrecognized_ops", statics.unrecognized_ops},
                   {"inferred_shapes", statics.inferred_shapes}};
  doc["environment"] = environment_info(device);
  doc["environment"]["threads"] = dynamic.threads;  // the count the profile ran under

  ProfileResult result;
  if (options.trace) result.chrome_trace = dynamic.chrome_trace();
  result.markdown = profile_markdown(doc, options.top_k);
  result.profile = std::move(doc);
  return result;
}

std::string profile_markdown(const Json& profile, int top_k) {
  const Json& total = profile["total"];
  std::string shapes;
  for (const auto& input : profile["input_shapes"])
    shapes += (shapes.empty() ? "" : ", ") + shape_text(input["shape"].get<std::vector<std::int64_t>>());
  std::string text = fmt::format("### Profile of {}\n\n", profile.value("model", std::string("model")));
  text += fmt::format(
      "Input {} on {}, {} thread(s). Whole model: {:.3f} ms (p50 of bare forwards), {} parameters, {} MACs, "
      "peak memory {} bytes. Sum of the per-layer latencies: {:.3f} ms = {:.1f}% of the whole model "
      "(method `{}`; unattributed head/tail gap {:.3f} ms per forward).\n\n",
      shapes, profile.value("device", std::string("cpu")), profile.value("threads", 0),
      total["latency_ms"].get<double>(), human(total["params"].get<double>()), human(total["macs"].get<double>()),
      total["peak_bytes"].get<std::int64_t>(), total["sum_of_layers_ms"].get<double>(),
      100.0 * profile.value("sum_ratio", 0.0), profile.value("method", std::string()), profile.value("gap_ms", 0.0));
  std::vector<const Json*> order;
  for (const Json& layer : profile["layers"]) order.push_back(&layer);
  std::stable_sort(order.begin(), order.end(), [](const Json* a, const Json* b) {
    return (*a)["latency_ms"].get<double>() > (*b)["latency_ms"].get<double>();
  });
  text += fmt::format("Top {} layers by latency:\n\n", std::min<std::size_t>(top_k, order.size()));
  text += "| # | layer | kind | params | MACs | latency ms | share % | intensity | bound |\n";
  text += "|---:|---|---|---:|---:|---:|---:|---:|---|\n";
  for (int i = 0; i < top_k && i < static_cast<int>(order.size()); ++i) {
    const Json& layer = *order[static_cast<std::size_t>(i)];
    text += fmt::format("| {} | `{}` | {} | {} | {} | {:.3f} | {:.1f} | {:.1f} | {} |\n", i + 1,
                        layer["name"].get<std::string>(), layer["kind"].get<std::string>(),
                        human(layer["params"].get<double>()), human(layer["macs"].get<double>()),
                        layer["latency_ms"].get<double>(), 100.0 * layer["latency_share"].get<double>(),
                        layer["intensity"].get<double>(), layer["bound"].get<std::string>());
  }
  return text;
}

Status run_profile_stage(AgentContext& context, const ProfileOptions& options) {
  PROFAGENT_ASSIGN_OR_RETURN(auto model, context.input_as<ModelArtifact>("model"));
  // A quantized model runs (and its copies re-pack) with the engine it was packed for.
  profagent::torch_tk::QuantizedEngineGuard engine(profagent::torch_tk::engine_of_metadata(model->metadata()));
  if (!engine.ok()) return Status(engine.error()).with_context("profiling the model");
  const Json summary = model->summary();
  std::string name = summary.value("source", std::string());
  if (name.empty()) name = summary.value("path", std::string("model"));
  Json spec;
  if (ArtifactPtr shapes = context.input("shapes")) spec = shapes->summary();
  auto specs = profile_input_specs(spec.is_null() ? nullptr : &spec, model->metadata(), options);
  if (!specs) return std::move(specs).take_status().with_context("profiling " + name);
  if (context.cancelled()) return Status(ErrorCode::kCancelled, "interrupted before profiling " + name);
  PROFAGENT_ASSIGN_OR_RETURN(ProfileResult result,
                             profile_model(model->module(), specs.value(), options, name, &context));
  const Json& total = result.profile["total"];
  context.log().info("profiled {}: {:.3f} ms per forward, sum of layers {:.3f} ms (ratio {:.3f}), {} MACs, {} params",
                     name, total["latency_ms"].get<double>(), total["sum_of_layers_ms"].get<double>(),
                     result.profile["sum_ratio"].get<double>(), total["macs"].get<std::int64_t>(),
                     total["params"].get<std::int64_t>());
  return context.set_output("profile", std::make_shared<ProfileArtifact>(std::move(result.profile),
                                                                         std::move(result.chrome_trace),
                                                                         std::move(result.markdown)));
}

}  // namespace profagent::agents
