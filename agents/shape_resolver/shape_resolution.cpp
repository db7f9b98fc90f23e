#include "shape_resolution.hpp"

#include "profagent/torch/errors.hpp"
#include "profagent/torch/model_io.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include "profagent/log.hpp"
#include "profagent/text.hpp"

namespace profagent::agents {

namespace {

constexpr const char* kMetaRecord = "extra/profagent_meta.json";

std::string shapes_to_string(const std::vector<Shape>& shapes) {
  std::string text;
  for (std::size_t i = 0; i < shapes.size(); ++i) text += (i ? ", " : "") + shape_to_string(shapes[i]);
  return text;
}

Result<c10::ScalarType> scalar_type(const std::string& dtype) {
  if (dtype == "float32") return c10::kFloat;
  if (dtype == "float16") return c10::kHalf;
  if (dtype == "bfloat16") return c10::kBFloat16;
  return Status(ErrorCode::kInvalidArgument,
                "unknown dtype '" + dtype + "' (expected float32, float16 or bfloat16)");
}

void collect_output_shapes(const c10::IValue& value, Json& out) {
  for (const at::Tensor& tensor : torch_tk::output_tensors(value))
    out.push_back({{"shape", tensor.sizes().vec()}, {"dtype", std::string(c10::toString(tensor.scalar_type()))}});
}

// What forward() takes besides self: how many tensors, how many of them are required, and whether
// something other than a tensor is required (then probing with tensors alone cannot work).
struct ForwardSignature {
  std::size_t inputs = 0;
  std::size_t required = 0;
  std::vector<std::string> names;
  std::string non_tensor;  // the first required argument that is not a tensor
};

Result<ForwardSignature> forward_signature(const torch::jit::Module& module) {
  auto method = module.find_method("forward");
  if (!method) return Status(ErrorCode::kUnsupported, "the model has no forward() method");
  ForwardSignature signature;
  const auto& arguments = method->function().getSchema().arguments();
  for (std::size_t i = 1; i < arguments.size(); ++i) {
    const auto& argument = arguments[i];
    bool required = !argument.default_value().has_value();
    bool tensor = argument.type()->kind() == c10::TypeKind::TensorType;
    if (!tensor && required && signature.non_tensor.empty())
      signature.non_tensor = argument.name() + ": " + argument.type()->annotation_str();
    ++signature.inputs;
    if (required) ++signature.required;
    signature.names.push_back(argument.name());
  }
  return signature;
}

// One forward under NoGradGuard with random (seeded) inputs of the given shapes.
struct Attempt {
  bool ok = false;
  std::string error;
  Json outputs = Json::array();
  double ms = 0.0;
};

Attempt try_forward(torch::jit::Module& module, const std::vector<Shape>& shapes, c10::ScalarType dtype,
                    c10::Device device) {
  Attempt attempt;
  auto started = std::chrono::steady_clock::now();
  try {
    torch::NoGradGuard no_grad;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    std::vector<c10::IValue> inputs;
    for (const Shape& shape : shapes)
      inputs.emplace_back(at::randn(shape, generator, at::TensorOptions().dtype(at::kFloat))
                              .to(at::TensorOptions().dtype(dtype).device(device)));
    c10::IValue output = module.forward(std::move(inputs));
    collect_output_shapes(output, attempt.outputs);
    attempt.ok = true;
  } catch (const std::exception& e) {
    attempt.error = torch_tk::torch_error_reason(e);
  }
  attempt.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return attempt;
}

Json shapes_json(const std::vector<Shape>& shapes) {
  Json out = Json::array();
  for (const Shape& shape : shapes) out.push_back(shape);
  return out;
}

Json tried_entry(const std::vector<Shape>& shapes, const std::string& from, const Attempt& attempt) {
  Json entry = {{"shapes", shapes_json(shapes)},
                {"from", from},
                {"ok", attempt.ok},
                {"ms", std::round(attempt.ms * 10.0) / 10.0}};
  if (!attempt.ok) entry["error"] = attempt.error;
  return entry;
}

// A handle to the model in eval mode. Acquisition leaves models in eval mode, so this is normally
// the published module itself; one still training (eval: false) is cloned, because artifacts are
// immutable and BatchNorm would update its running statistics during a probe.
torch::jit::Module eval_module(const ModelArtifact& model) {
  torch::jit::Module module = model.module();
  bool training = module.is_training();
  for (const auto& child : module.modules()) training = training || child.is_training();
  if (!training) return module;
  torch::jit::Module copy = module.clone();
  copy.eval();
  return copy;
}

c10::Device module_device(const torch::jit::Module& module) {
  for (const auto& parameter : module.parameters()) return parameter.device();
  for (const auto& buffer : module.buffers()) return buffer.device();
  return c10::Device(c10::kCPU);
}

Status check_shape_count(const ForwardSignature& signature, const std::vector<Shape>& shapes,
                         const std::string& from) {
  if (shapes.size() >= signature.required && shapes.size() <= signature.inputs) return Status::ok();
  std::string names;
  for (std::size_t i = 0; i < signature.names.size(); ++i) names += (i ? ", " : "") + signature.names[i];
  return Status(ErrorCode::kInvalidArgument,
                "the " + from + " gives " + std::to_string(shapes.size()) + " input shape(s) (" +
                    shapes_to_string(shapes) + ") but forward() takes " + std::to_string(signature.inputs) +
                    " input(s) (" + names + ")" +
                    (signature.required != signature.inputs
                         ? ", " + std::to_string(signature.required) + " of them required"
                         : std::string()));
}

}  // namespace

std::string shape_to_string(const Shape& shape) {
  std::string text;
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? "x" : "") + std::to_string(shape[i]);
  return text;
}

Json ShapeResolution::to_json() const {
  Json inputs = Json::array();
  for (const Shape& shape : input_shapes) inputs.push_back({{"shape", shape}, {"dtype", dtype}});
  Json out = {{"inputs", inputs}, {"source", source}, {"tried", tried}};
  if (!output_shapes.is_null()) out["outputs"] = output_shapes;
  return out;
}

const std::vector<Shape>& default_probe_candidates() {
  // ImageNet first (most models here), then MNIST- and CIFAR-sized, then the remaining sizes;
  // 1x224 last because a one-channel ImageNet-sized model is rare.
  static const std::vector<Shape> kCandidates = {
      {1, 3, 224, 224}, {1, 1, 28, 28}, {1, 3, 32, 32},   {1, 1, 32, 32},   {1, 3, 28, 28},
      {1, 3, 64, 64},   {1, 3, 96, 96}, {1, 3, 256, 256}, {1, 3, 299, 299}, {1, 1, 224, 224},
  };
  return kCandidates;
}

Result<std::vector<Shape>> parse_shape_list(const Json& value, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, what + " " + value.dump() + ": " + why);
  };
  if (!value.is_array() || value.empty())
    return bad("expected a shape like [1, 3, 224, 224], or a list of them, one per input");
  auto parse_one = [&](const Json& dims) -> Result<Shape> {
    if (!dims.is_array() || dims.empty()) return bad("a shape is a non-empty list of dimensions");
    Shape shape;
    for (const Json& dim : dims) {
      if (!dim.is_number_integer() || dim.get<std::int64_t>() <= 0)
        return bad("dimension " + dim.dump() + " is not a positive integer");
      shape.push_back(dim.get<std::int64_t>());
    }
    return shape;
  };
  std::vector<Shape> shapes;
  if (!value.front().is_array()) {
    PROFAGENT_ASSIGN_OR_RETURN(Shape shape, parse_one(value));
    shapes.push_back(std::move(shape));
    return shapes;
  }
  for (const Json& element : value) {
    PROFAGENT_ASSIGN_OR_RETURN(Shape shape, parse_one(element));
    shapes.push_back(std::move(shape));
  }
  return shapes;
}

Result<Json> read_model_metadata(const std::string& path) {
  try {
    // The stream reader opens the ZIP directory only; torch::jit::load(path, device, extra_files)
    // would deserialize every tensor of the model (hundreds of MB for a ViT) to read one small entry.
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (!reader.hasRecord(kMetaRecord)) return Json();
    auto [data, size] = reader.getRecord(kMetaRecord);
    std::string text(static_cast<const char*>(data.get()), size);
    Json meta = Json::parse(text, nullptr, false);
    if (meta.is_discarded() || !meta.is_object())
      return Status(ErrorCode::kParseError,
                    "the profagent_meta.json stored in " + path + " is not a JSON object");
    return meta;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kParseError,
                  "cannot read the metadata of " + path + ": " + torch_tk::torch_error_reason(e));
  }
}

Result<ShapeResolution> resolve_input_shapes(const ModelArtifact& model,
                                             const ShapeResolutionOptions& options) {
  const Json summary = model.summary();
  const std::string path = summary.value("path", std::string());
  const std::string shown = path.empty() ? summary.value("source", std::string("the model")) : path;
  for (const Shape& shape : options.input_shapes)
    if (shape.empty() || std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d <= 0; }))
      return Status(ErrorCode::kInvalidArgument,
                    "input_shape [" + shape_to_string(shape) + "]: dimensions must be positive integers");

  // The stored metadata is read when it can decide something: the shapes, or the dtype.
  Json meta;
  bool want_meta = options.use_metadata && (options.input_shapes.empty() || !options.dtype.has_value());
  if (want_meta && model.metadata().is_object()) {
    meta = model.metadata();
  } else if (want_meta && !path.empty()) {
    auto read = read_model_metadata(path);
    if (read) {
      meta = std::move(read).value();
    } else {
      log().warn("ignoring the metadata of {}: {}", shown, read.status().message());
    }
  }

  ShapeResolution resolution;
  resolution.dtype = options.dtype.value_or("float32");
  if (!options.dtype && meta.is_object() && meta.contains("dtype")) {
    const Json& stored = meta["dtype"];
    if (stored.is_string() && scalar_type(stored.get<std::string>()).is_ok()) {
      resolution.dtype = stored.get<std::string>();
    } else {
      log().warn("ignoring the dtype {} stored in {} (expected float32, float16 or bfloat16)", stored.dump(),
                 shown);
    }
  }
  PROFAGENT_ASSIGN_OR_RETURN(c10::ScalarType dtype, scalar_type(resolution.dtype));
  torch::jit::Module module = eval_module(model);
  c10::Device device = module_device(module);
  PROFAGENT_ASSIGN_OR_RETURN(ForwardSignature signature, forward_signature(module));

  auto attempt = [&](const std::vector<Shape>& shapes, const std::string& from) {
    Attempt result = try_forward(module, shapes, dtype, device);
    resolution.tried.push_back(tried_entry(shapes, from, result));
    log().debug("shape {} ({}) on {}: {} in {:.1f} ms", shapes_to_string(shapes), from, shown,
                result.ok ? "runs" : result.error, result.ms);
    return result;
  };
  auto accept = [&](const std::vector<Shape>& shapes, const std::string& from, const Attempt* ran) {
    resolution.input_shapes = shapes;
    resolution.source = from;
    if (ran != nullptr) resolution.output_shapes = ran->outputs;
    return resolution;
  };

  if (!options.input_shapes.empty()) {
    PROFAGENT_RETURN_IF_ERROR(check_shape_count(signature, options.input_shapes, "workflow"));
    if (!options.verify) return accept(options.input_shapes, "workflow", nullptr);
    Attempt ran = attempt(options.input_shapes, "workflow");
    if (!ran.ok)
      return Status(ErrorCode::kInvalidArgument,
                    "the workflow's input_shape " + shapes_to_string(options.input_shapes) + " (" +
                        resolution.dtype + ") does not run through " + shown + ": " + ran.error);
    return accept(options.input_shapes, "workflow", &ran);
  }

  if (meta.is_object() && meta.contains("input_shapes")) {
    auto stored = parse_shape_list(meta["input_shapes"], "the input_shapes stored in " + shown);
    Status usable =
        stored ? check_shape_count(signature, stored.value(), "metadata of " + shown) : stored.status();
    if (!usable.is_ok()) {
      log().warn("ignoring the stored input shapes: {}; probing instead", usable.message());
    } else if (!options.verify) {
      return accept(stored.value(), "metadata", nullptr);
    } else {
      Attempt ran = attempt(stored.value(), "metadata");
      if (ran.ok) return accept(stored.value(), "metadata", &ran);
      // A stale or wrong record: say so, and let probing have its chance.
      log().warn("the input shapes stored in {} ({}) do not run: {}; probing instead", shown,
                 shapes_to_string(stored.value()), ran.error);
    }
  }

  if (signature.inputs == 0 || signature.required > 1 || !signature.non_tensor.empty()) {
    std::string takes = !signature.non_tensor.empty()
                            ? "requires a non-tensor argument (" + signature.non_tensor + ")"
                            : "takes " + std::to_string(signature.required) + " required inputs";
    return Status(ErrorCode::kUnsupported,
                  "cannot probe the input shape of " + shown + ": its forward() " + takes +
                      "; give them in the workflow (input_shape: [[...], [...]], one per input)");
  }
  const std::vector<Shape>& candidates =
      options.candidates.empty() ? default_probe_candidates() : options.candidates;
  std::string first_error;
  std::vector<std::string> tried;  // every shape that ran and failed, the stored one included
  if (!resolution.tried.empty()) {
    first_error = resolution.tried.front().value("error", std::string());
    tried.push_back(shapes_to_string(parse_shape_list(resolution.tried.front()["shapes"], "").value()) +
                    " (stored)");
  }
  for (const Shape& candidate : candidates) {
    if (options.cancelled && options.cancelled())
      return Status(ErrorCode::kCancelled, "shape probing of " + shown + " was cancelled");
    Attempt ran = attempt({candidate}, "probe");
    if (ran.ok) return accept({candidate}, "probe", &ran);
    tried.push_back(shape_to_string(candidate));
    if (first_error.empty()) first_error = ran.error;
  }
  std::string list;
  for (std::size_t i = 0; i < tried.size(); ++i) list += (i ? ", " : "") + tried[i];
  return Status(ErrorCode::kValidation, "no candidate input shape runs through " + shown + " (" +
                                            resolution.dtype + "); tried " + std::to_string(tried.size()) +
                                            ": " + list + "; the first failed with: " + first_error +
                                            ". Give the shape in the workflow (input_shape: [1, C, H, W])");
}

}  // namespace profagent::agents
