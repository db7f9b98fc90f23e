// The finetune stage: trains (or BatchNorm-recalibrates) a copy of its input model on a dataset
// provider's data and publishes the copy as a new model artifact with a per-epoch history. The
// training loop lives in trainer.cpp so that it is testable on its own.
#include <torch/script.h>

#include <memory>
#include <optional>
#include <string>

#include "profagent/model_artifact.hpp"
#include "profagent/profagent.hpp"
#include "profagent/torch/dataset.hpp"
#include "trainer.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Config;
using profagent::ConfigType;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Result;
using profagent::Status;
using profagent::agents::TrainMode;
using profagent::agents::TrainOptions;
using profagent::torch_tk::Dataset;

// A dataset block is {format: <provider id>, ...that provider's config}.
Result<std::pair<std::string, Json>> split_dataset_config(const std::string& key, const Json& block) {
  if (!block.is_object() || !block.contains("format") || !block["format"].is_string())
    return Status(
        ErrorCode::kValidation,
        key + ".format is required: the dataset provider to read it with (idx, cifar, image_folder)");
  Json rest = block;
  rest.erase("format");
  return std::make_pair(block["format"].get<std::string>(), std::move(rest));
}

Json dataset_summary(const Dataset& data) {
  const auto& info = data.info();
  return Json{{"format", info.format},
              {"source", info.source},
              {"size", info.size},
              {"num_classes", info.num_classes},
              {"sample_shape", info.sample_shape}};
}

std::string percent(const std::optional<double>& value) {
  return value ? fmt::format("{:.2f}%", *value * 100.0) : std::string("-");
}

class FinetuneAgent : public profagent::Agent {
 public:
  FinetuneAgent(std::pair<std::string, Json> dataset,
                std::optional<std::pair<std::string, Json>> eval_dataset, TrainOptions options)
      : dataset_(std::move(dataset)), eval_dataset_(std::move(eval_dataset)), options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    PROFAGENT_ASSIGN_OR_RETURN(auto input, context.input_as<ModelArtifact>("model"));
    PROFAGENT_ASSIGN_OR_RETURN(std::unique_ptr<Dataset> train, make_dataset(context, "dataset", dataset_));
    std::unique_ptr<Dataset> eval;
    if (eval_dataset_) {
      PROFAGENT_ASSIGN_OR_RETURN(eval, make_dataset(context, "eval_dataset", *eval_dataset_));
    }

    // Artifacts are immutable and the input's module is shared with other stages: work on a deep
    // copy. Cloned under no_grad so that its parameters are fresh leaves the optimizer can update.
    auto module = std::make_shared<torch::jit::Module>();
    {
      torch::NoGradGuard no_grad;
      *module = input->module().clone();
    }

    profagent::agents::TrainHooks hooks;
    hooks.cancelled = [&context] { return context.cancelled(); };
    hooks.on_batch = [&context](long done, long total) { context.progress("batch", done, total); };
    hooks.on_epoch = [&context](const profagent::agents::EpochStats& epoch) {
      context.log().info("epoch {}/{}: loss {:.4f}, train acc {:.2f}%, eval acc {}, lr {:.6f}, {:.1f} s",
                         epoch.epoch, epoch.total_epochs, epoch.loss, epoch.train_accuracy * 100.0,
                         percent(epoch.eval_accuracy), epoch.lr, epoch.seconds);
    };

    Json history{{"mode", options_.mode == TrainMode::kTrain ? "train" : "bn_recalibrate"},
                 {"options", options_.to_json()},
                 {"dataset", dataset_summary(*train)}};
    if (eval) history["eval_dataset"] = dataset_summary(*eval);
    Json result_summary;
    context.log().info("{} on {} samples of {} ({}): {}",
                       options_.mode == TrainMode::kTrain ? "training" : "recalibrating BatchNorm",
                       options_.limit > 0 ? std::min(options_.limit, train->info().size) : train->info().size,
                       train->info().format, train->info().source, options_.to_json().dump());

    if (options_.mode == TrainMode::kTrain) {
      auto trained = profagent::agents::train_module(*module, *train, eval.get(), options_, hooks);
      if (!trained) return std::move(trained).take_status();
      history.update(trained->to_json());
      const auto& last = trained->epochs.back();
      result_summary = Json{{"epochs", trained->epochs.size()},
                            {"steps", trained->total_steps},
                            {"loss", last.loss},
                            {"train_accuracy", last.train_accuracy}};
      if (last.eval_accuracy) result_summary["eval_accuracy"] = *last.eval_accuracy;
      context.log().info("trained {} steps in {:.1f} s: final loss {:.4f}, train acc {:.2f}%, eval acc {}",
                         trained->total_steps, trained->seconds, last.loss, last.train_accuracy * 100.0,
                         percent(last.eval_accuracy));
    } else {
      auto recalibrated = profagent::agents::recalibrate_batchnorm(*module, *train, options_, hooks);
      if (!recalibrated) return std::move(recalibrated).take_status();
      history["recalibration"] = recalibrated->to_json();
      result_summary = Json{{"bn_layers", recalibrated->bn_layers},
                            {"batches", recalibrated->batches},
                            {"method", recalibrated->method}};
      context.log().info("recalibrated {} BatchNorm layers from {} batches ({} samples, {}) in {:.1f} s",
                         recalibrated->bn_layers, recalibrated->batches, recalibrated->samples,
                         recalibrated->method, recalibrated->seconds);
      if (eval) {
        auto evaluated = profagent::agents::evaluate_module(*module, *eval, options_.batch_size, hooks);
        if (!evaluated) return std::move(evaluated).take_status();
        history["eval"] = evaluated->to_json();
        result_summary["eval_accuracy"] = evaluated->accuracy;
        context.log().info("eval acc {:.2f}% on {} samples", evaluated->accuracy * 100.0, evaluated->samples);
      }
    }

    Json provenance = derived_provenance(input->summary(), context.stage_id());
    provenance["finetune"] = std::move(result_summary);
    PROFAGENT_RETURN_IF_ERROR(context.set_output(
        "model", std::make_shared<ModelArtifact>(std::shared_ptr<const torch::jit::Module>(std::move(module)),
                                                 std::move(provenance), input->metadata())));
    return context.set_output(
        "history", std::make_shared<profagent::JsonArtifact>(profagent::kinds::kJson, std::move(history)));
  }

 private:
  static Result<std::unique_ptr<Dataset>> make_dataset(AgentContext& context, const std::string& key,
                                                       const std::pair<std::string, Json>& block) {
    auto made =
        context.make_provider_as<Dataset>(profagent::torch_tk::kDatasetInterface, block.first, block.second);
    if (!made) return std::move(made).take_status().with_context("opening `" + key + "`");
    if (made.value()->info().size <= 0)
      return Status(ErrorCode::kInvalidArgument,
                    "`" + key + "` (" + made.value()->info().source + ") is empty");
    return std::move(made).value();
  }

  // The new model keeps where its ancestor came from; the file hash and size described the
  // ancestor's file, not this model, so they move under derived_from.
  static Json derived_provenance(const Json& parent, const std::string& stage) {
    Json provenance = Json::object();
    for (const char* key : {"source", "format", "device", "methods"})
      if (parent.contains(key)) provenance[key] = parent[key];
    provenance["eval"] = true;
    Json derived_from{{"stage", stage}};
    for (const char* key : {"path", "sha256", "params"})
      if (parent.contains(key)) derived_from[key] = parent[key];
    provenance["derived_from"] = std::move(derived_from);
    return provenance;
  }

  std::pair<std::string, Json> dataset_;
  std::optional<std::pair<std::string, Json>> eval_dataset_;
  TrainOptions options_;
};

AgentFactory make_finetune_factory() {
  AgentFactory factory;
  factory.id = "finetune";
  factory.role = "training";
  factory.summary =
      "Trains or fine-tunes a copy of a TorchScript model on a dataset (SGD/AdamW, cosine/step schedules, "
      "flip+crop augmentation), or recalibrates its BatchNorm statistics.";
  factory.inputs = {{"model", profagent::kinds::kModel, "the model to train; it is cloned, never changed"}};
  factory.outputs = {
      {"model", profagent::kinds::kModel, "the trained copy, in eval mode"},
      {"history", profagent::kinds::kJson,
       "per-epoch loss, train_accuracy, eval_accuracy, eval_loss, lr and seconds; the options and datasets"}};
  factory.config.add("dataset", ConfigType::kMap)
      .required()
      .describe("the training data: {format: idx|cifar|image_folder, ...that dataset provider's config}");
  factory.config.add("eval_dataset", ConfigType::kMap)
      .describe("evaluated after each epoch (and after recalibration): {format: ..., ...}");
  profagent::agents::add_train_fields(factory.config);
  factory.make = [](const Config& config) -> Result<std::unique_ptr<profagent::Agent>> {
    PROFAGENT_ASSIGN_OR_RETURN(auto dataset, split_dataset_config("dataset", config.get("dataset")));
    std::optional<std::pair<std::string, Json>> eval_dataset;
    if (config.has("eval_dataset")) {
      PROFAGENT_ASSIGN_OR_RETURN(eval_dataset,
                                 split_dataset_config("eval_dataset", config.get("eval_dataset")));
    }
    PROFAGENT_ASSIGN_OR_RETURN(TrainOptions options, profagent::agents::train_options_from_config(config));
    return std::unique_ptr<profagent::Agent>(
        std::make_unique<FinetuneAgent>(std::move(dataset), std::move(eval_dataset), std::move(options)));
  };
  return factory;
}

void register_finetune(profagent::Registrar& registrar) {
  registrar.add_agent(make_finetune_factory());
}

}  // namespace

PROFAGENT_PLUGIN("finetune", "0.1.0", register_finetune);
