// The "image_folder" dataset provider: root/<class>/**/<image>, torchvision's ImageFolder layout.
// Classes are the sorted sub-directory names of root (label = position); images are the files with
// one of `extensions` found under each class directory (recursively, sorted by path). Images are
// decoded with stb_image when a batch is read, not at construction, so a large folder costs only a
// directory scan up front.
//
// Images come in every size, so a batch can only have one shape if the transforms end at a fixed
// size: `center_crop` is required (typically with `resize`, e.g. resize 256 + center_crop 224).
// An image smaller than the crop after resizing is refused with its path.
#include <algorithm>
#include <cctype>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "dataset_common.hpp"
#include "profagent/log.hpp"
#include "profagent/plugin.hpp"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_FAILURE_USERMSG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace {

namespace fs = std::filesystem;
using profagent::ConfigType;
using profagent::ErrorCode;
using profagent::Json;
using profagent::Result;
using profagent::Status;
using profagent::datasets::Batch;
using profagent::datasets::DatasetInfo;
using profagent::datasets::Transforms;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

struct Sample {
  fs::path path;
  std::int64_t label = 0;
};

struct ImageFolderOptions {
  fs::path root;
  std::vector<std::string> extensions = {"jpg", "jpeg", "png"};  // lower case, without the dot
  int channels_in = 3;
  std::int64_t limit = 0;  // 0: all
  Transforms transforms;
};

// The sorted class directories and, per class, its image files sorted by path.
Result<std::pair<std::vector<std::string>, std::vector<Sample>>> scan(const ImageFolderOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec))
    return Status(ErrorCode::kNotFound, "image_folder root " + options.root.string() + " is not a directory");
  std::vector<std::string> classes;
  for (fs::directory_iterator it(options.root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) classes.push_back(it->path().filename().string());
  }
  if (ec) return Status(ErrorCode::kIo, "cannot list " + options.root.string() + ": " + ec.message());
  if (classes.empty())
    return Status(ErrorCode::kValidation,
                  "image_folder root " + options.root.string() +
                      " has no class sub-directories (expected root/<class>/<image>)");
  std::sort(classes.begin(), classes.end());

  std::vector<Sample> samples;
  for (std::size_t label = 0; label < classes.size(); ++label) {
    const fs::path dir = options.root / classes[label];
    std::vector<fs::path> files;
    const auto flags = fs::directory_options::follow_directory_symlink;
    for (fs::recursive_directory_iterator it(dir, flags, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::string extension = lower(it->path().extension().string());
      if (!extension.empty()) extension.erase(0, 1);
      if (std::find(options.extensions.begin(), options.extensions.end(), extension) !=
          options.extensions.end())
        files.push_back(it->path());
    }
    if (ec) return Status(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
    // An empty class would shift nothing but would make num_classes promise samples that never come,
    // which is what torchvision refuses too.
    if (files.empty()) {
      std::string known;
      for (const auto& extension : options.extensions) known += (known.empty() ? "" : ", ") + extension;
      return Status(ErrorCode::kValidation, "image_folder class '" + classes[label] + "' (" + dir.string() +
                                                ") has no images (" + known + ")");
    }
    std::sort(files.begin(), files.end());
    for (auto& file : files) samples.push_back({std::move(file), static_cast<std::int64_t>(label)});
  }
  return std::make_pair(std::move(classes), std::move(samples));
}

struct StbFree {
  void operator()(stbi_uc* pixels) const { stbi_image_free(pixels); }
};

class ImageFolderDataset : public profagent::torch_tk::Dataset {
 public:
  ImageFolderDataset(DatasetInfo info, Transforms transforms, std::vector<Sample> samples, int channels_in)
      : info_(std::move(info)),
        transforms_(std::move(transforms)),
        samples_(std::move(samples)),
        channels_in_(channels_in) {}

  const DatasetInfo& info() const override { return info_; }

  // Each image is decoded, transformed on its own (sizes differ) and written straight into its row of
  // out.images; nothing but the decoder's pixel buffer is allocated per image.
  Status read_batch(const std::vector<std::int64_t>& indices, Batch& out) override {
    PROFAGENT_RETURN_IF_ERROR(profagent::datasets::check_indices(indices, info_.size, info_.format));
    try {
      const auto count = static_cast<std::int64_t>(indices.size());
      std::vector<std::int64_t> sizes{count};
      sizes.insert(sizes.end(), info_.sample_shape.begin(), info_.sample_shape.end());
      profagent::datasets::reuse_or_allocate(out.images, sizes, transforms_.dtype);
      profagent::datasets::reuse_or_allocate(out.labels, {count}, torch::kInt64);
      auto* labels = out.labels.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < count; ++i) {
        const Sample& sample = samples_[static_cast<std::size_t>(indices[static_cast<std::size_t>(i)])];
        int width = 0, height = 0, channels_in_file = 0;
        std::unique_ptr<stbi_uc, StbFree> pixels(
            stbi_load(sample.path.c_str(), &width, &height, &channels_in_file, channels_in_));
        if (!pixels)
          return Status(ErrorCode::kParseError,
                        "cannot decode image " + sample.path.string() + ": " +
                            (stbi_failure_reason() ? stbi_failure_reason() : "unknown"));
        // stb gives rows of interleaved channels (H, W, C); the transforms take planes (N, C, H, W).
        const torch::Tensor raw =
            torch::from_blob(pixels.get(), {1, height, width, channels_in_}, torch::kUInt8)
                .permute({0, 3, 1, 2});
        torch::Tensor row = out.images.narrow(0, i, 1);
        const void* row_data = row.data_ptr();
        Status applied = transforms_.apply(raw, row);
        if (!applied.is_ok()) return std::move(applied).with_context("in image " + sample.path.string());
        if (row.data_ptr() != row_data)
          return Status(ErrorCode::kInternal, "transforms did not write into the batch in place");
        labels[i] = sample.label;
      }
    } catch (const std::exception& e) {
      return Status(ErrorCode::kRuntime, std::string("reading an image_folder batch failed: ") + e.what());
    }
    return Status::ok();
  }

 private:
  DatasetInfo info_;
  Transforms transforms_;
  std::vector<Sample> samples_;
  int channels_in_;
};

Result<std::unique_ptr<profagent::Provider>> load_image_folder(const ImageFolderOptions& options,
                                                               const Transforms& transforms) {
  if (transforms.center_crop <= 0)
    return Status(ErrorCode::kInvalidArgument,
                  "image_folder needs center_crop (usually with resize, e.g. resize: 256, center_crop: 224): "
                  "images differ in size and every sample of a batch must have one shape");
  PROFAGENT_ASSIGN_OR_RETURN(auto scanned, scan(options));
  auto& [classes, samples] = scanned;
  const auto total = static_cast<std::int64_t>(samples.size());
  if (options.limit > 0 && options.limit < total) samples.resize(static_cast<std::size_t>(options.limit));

  DatasetInfo info;
  info.format = "image_folder";
  info.source = options.root.string();
  info.size = static_cast<std::int64_t>(samples.size());
  info.num_classes = static_cast<std::int64_t>(classes.size());
  info.class_names = classes;
  // Validated on a blank sample exactly the crop's size: what varies per image is only how much it
  // is resized, and an image too small for the crop is reported when it is read.
  PROFAGENT_ASSIGN_OR_RETURN(info.sample_shape, profagent::datasets::checked_sample_shape(
                                                    transforms, options.channels_in, transforms.center_crop,
                                                    transforms.center_crop));
  profagent::log().debug("image_folder: {} of {} images in {} classes under {}", info.size, total,
                         info.num_classes, info.source);
  return std::unique_ptr<profagent::Provider>(std::make_unique<ImageFolderDataset>(
      std::move(info), transforms, std::move(samples), options.channels_in));
}

profagent::ProviderFactory make_image_folder_factory() {
  profagent::ProviderFactory factory;
  factory.id = "image_folder";
  factory.interface = profagent::torch_tk::kDatasetInterface;
  factory.summary =
      "A directory of class sub-directories of JPEG/PNG images (torchvision's ImageFolder layout); "
      "needs center_crop so that batches have one shape.";
  static const profagent::OptionsSchema<ImageFolderOptions> schema = [] {
    using O = ImageFolderOptions;
    profagent::OptionsSchema<O> s;
    s.field_without_default("root", &O::root)
        .required()
        .describe("the directory whose sub-directories are the classes (sorted by name: label 0, 1, ...)");
    s.field("extensions", &O::extensions)
        .min(1)
        .describe("file extensions that are images (case-insensitive, with or without the dot)");
    s.field_with("channels_in", ConfigType::kEnum,
                 [](const Json& value, O& options) {
                   options.channels_in = value.get<std::string>() == "1" ? 1 : 3;
                   return Status::ok();
                 })
        .choices({"1", "3"})
        .default_value(std::to_string(O{}.channels_in))
        .describe("decode as grey (1) or RGB (3); the `channels` transform may then replicate 1 -> 3");
    profagent::datasets::add_limit_field(s, &O::limit);
    s.fields_from(&O::transforms, profagent::torch_tk::add_transform_fields, profagent::torch_tk::transforms_from_config);
    return s;
  }();
  profagent::bind_provider_options<ImageFolderOptions>(
      factory, schema, [](ImageFolderOptions options) -> Result<std::unique_ptr<profagent::Provider>> {
        for (std::string& extension : options.extensions) {  // as scan() compares them
          extension = lower(extension);
          if (!extension.empty() && extension.front() == '.') extension.erase(0, 1);
          if (extension.empty()) return Status(ErrorCode::kInvalidArgument, "extensions: an extension is empty");
        }
        return load_image_folder(options, options.transforms);
      });
  return factory;
}

void register_dataset_image_folder(profagent::Registrar& registrar) {
  registrar.add_provider(make_image_folder_factory());
}

}  // namespace

PROFAGENT_PLUGIN("dataset_image_folder", "0.1.0", register_dataset_image_folder);
