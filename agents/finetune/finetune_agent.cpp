// The finetune stage: trains (or BatchNorm-recalibrates) a copy of its input model on a dataset
// provider's data and publishes the copy as a new model artifact with a per-epoch history. The
// training loop lives in trainer.cpp so that it is testable on its own.
#include <torch/script.h>

#include <memory>
#include <optional>
#include <string>

#include "profagent/torch/model_artifact.hpp"
#include "profagent/profagent.hpp"
#include "profagent/torch/dataset.hpp"
#include "trainer.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Result;
using profagent::Status;
using profagent::agents::FinetuneOptions;
using profagent::agents::TrainMode;
using profagent::agents::TrainOptions;
using profagent::torch_tk::Dataset;

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
  FinetuneAgent(Json dataset, std::optional<Json> eval_dataset, TrainOptions options)
      : dataset_(std::move(dataset)), eval_dataset_(std::move(eval_dataset)), options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    auto preparing = context.phase("prepare (datasets, clone)");
    PROFAGENT_ASSIGN_OR_RETURN(auto input, context.input_as<ModelArtifact>("model"));
    PROFAGENT_ASSIGN_OR_RETURN(std::unique_ptr<Dataset> train, profagent::torch_tk::make_dataset(context, dataset_, "dataset"));
    std::unique_ptr<Dataset> eval;
    if (eval_dataset_) {
      PROFAGENT_ASSIGN_OR_RETURN(eval, profagent::torch_tk::make_dataset(context, *eval_dataset_, "eval_dataset"));
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
    hooks.phases = &context;
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

    preparing.stop();
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
      auto recalibrating = context.phase("recalibrate");
      auto recalibrated = profagent::agents::recalibrate_batchnorm(*module, *train, options_, hooks);
      recalibrating.stop();
      if (!recalibrated) return std::move(recalibrated).take_status();
      history["recalibration"] = recalibrated->to_json();
      result_summary = Json{{"bn_layers", recalibrated->bn_layers},
                            {"batches", recalibrated->batches},
                            {"method", recalibrated->method}};
      context.log().info("recalibrated {} BatchNorm layers from {} batches ({} samples, {}) in {:.1f} s",
                         recalibrated->bn_layers, recalibrated->batches, recalibrated->samples,
                         recalibrated->method, recalibrated->seconds);
      if (eval) {
        auto evaluating = context.phase("eval");
        auto evaluated = profagent::agents::evaluate_module(*module, *eval, options_.batch_size, hooks);
        if (!evaluated) return std::move(evaluated).take_status();
        history["eval"] = evaluated->to_json();
        result_summary["eval_accuracy"] = evaluated->accuracy;
        context.log().info("eval acc {:.2f}% on {} samples", evaluated->accuracy * 100.0, evaluated->samples);
      }
    }

    Json provenance = profagent::derived_provenance(input->summary(), context.stage_id());
    provenance["finetune"] = std::move(result_summary);
    PROFAGENT_RETURN_IF_ERROR(context.set_output(
        "model", std::make_shared<ModelArtifact>(std::shared_ptr<const torch::jit::Module>(std::move(module)),
                                                 std::move(provenance), input->metadata())));
    return context.set_output(
        "history", std::make_shared<profagent::JsonArtifact>(profagent::kinds::kJson, std::move(history)));
  }

 private:
  Json dataset_;
  std::optional<Json> eval_dataset_;
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
  profagent::bind_agent_options<FinetuneOptions>(
      factory, profagent::agents::finetune_options_schema(),
      [](FinetuneOptions options) -> Result<std::unique_ptr<profagent::Agent>> {
        PROFAGENT_RETURN_IF_ERROR(profagent::torch_tk::split_dataset_config(options.dataset, "dataset").status());
        if (options.eval_dataset) {
          PROFAGENT_RETURN_IF_ERROR(
              profagent::torch_tk::split_dataset_config(*options.eval_dataset, "eval_dataset").status());
        }
        Json dataset = std::move(options.dataset);
        std::optional<Json> eval_dataset = std::move(options.eval_dataset);
        TrainOptions train = std::move(options);  // the training options alone
        return std::unique_ptr<profagent::Agent>(
            std::make_unique<FinetuneAgent>(std::move(dataset), std::move(eval_dataset), std::move(train)));
      });
  return factory;
}

void register_finetune(profagent::Registrar& registrar) {
  profagent::add_model_artifact_loader(registrar);
  registrar.add_agent(make_finetune_factory());
}

}  // namespace

PROFAGENT_PLUGIN("finetune", "0.1.0", register_finetune);
