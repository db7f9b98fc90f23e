// The "cifar" dataset provider: the binary versions of CIFAR-10 (records of 1 label byte + 3072 pixel
// bytes) and CIFAR-100 (1 coarse label byte + 1 fine label byte + 3072 pixel bytes), pixels stored
// as the red, green and blue 32×32 planes. Every file is loaded at construction into one uint8
// [N, 3, 32, 32] tensor, in the order the files are listed.
#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "dataset_common.hpp"
#include "profagent/log.hpp"
#include "profagent/plugin.hpp"

namespace {

namespace fs = std::filesystem;
using profagent::ConfigType;
using profagent::ErrorCode;
using profagent::Result;
using profagent::Status;
using profagent::datasets::DatasetInfo;
using profagent::datasets::Transforms;

constexpr std::int64_t kSide = 32;
constexpr std::int64_t kPixels = 3 * kSide * kSide;
constexpr std::int64_t kRecordsPerChunk = 1024;

struct Layout {
  std::string variant;      // cifar10 | cifar100
  std::int64_t record = 0;  // bytes per record
  std::int64_t label_offset = 0;
  std::int64_t num_classes = 0;
  const char* names_file = "";  // class names shipped next to the binary files
};

Layout layout_of(const std::string& variant, const std::string& label) {
  if (variant == "cifar100") {
    if (label == "coarse") return {variant, 2 + kPixels, 0, 20, "coarse_label_names.txt"};
    return {variant, 2 + kPixels, 1, 100, "fine_label_names.txt"};
  }
  return {variant, 1 + kPixels, 0, 10, "batches.meta.txt"};
}

struct LabelByte {
  std::int64_t offset;
  std::int64_t classes;
  const char* name;
};

const std::vector<LabelByte>& label_bytes(const std::string& variant) {
  static const std::vector<LabelByte> cifar10{{0, 10, "class"}};
  static const std::vector<LabelByte> cifar100{{0, 20, "coarse"}, {1, 100, "fine"}};
  return variant == "cifar100" ? cifar100 : cifar10;
}

// The names in the dataset's own meta file when it sits next to the data (one per line), else none:
// the binary files themselves carry only numbers.
std::vector<std::string> class_names_near(const fs::path& data_file, const Layout& layout) {
  std::ifstream in(data_file.parent_path() / layout.names_file);
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    names.push_back(line.substr(first, line.find_last_not_of(" \t\r") - first + 1));
  }
  if (static_cast<std::int64_t>(names.size()) != layout.num_classes) names.clear();
  return names;
}

struct CifarOptions {
  std::vector<fs::path> files;
  std::string variant = "cifar10";
  std::string label = "fine";
  std::int64_t limit = 0;  // 0: all
  Transforms transforms;
};

Result<std::unique_ptr<profagent::Provider>> load_cifar(const CifarOptions& options,
                                                        const Transforms& transforms) {
  const auto started = std::chrono::steady_clock::now();
  if (options.variant == "cifar10" && options.label == "coarse")
    return Status(ErrorCode::kInvalidArgument,
                  "label: coarse labels exist only in cifar100 (variant: cifar100)");
  const Layout layout = layout_of(options.variant, options.label);

  std::vector<std::int64_t> records;  // per file
  std::int64_t total = 0;
  for (const fs::path& file : options.files) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec))
      return Status(ErrorCode::kNotFound, "CIFAR file " + file.string() + " does not exist or is not a file");
    const auto size = static_cast<std::int64_t>(fs::file_size(file, ec));
    if (ec) return Status(ErrorCode::kIo, "cannot read the size of " + file.string() + ": " + ec.message());
    if (size == 0) return Status(ErrorCode::kParseError, file.string() + " is empty");
    if (size % layout.record != 0) {
      std::string message = file.string() + ": truncated record: " + std::to_string(size) +
                            " bytes is not a whole number of " + std::to_string(layout.record) + "-byte " +
                            layout.variant + " records (" + std::to_string(size / layout.record) +
                            " complete, then " + std::to_string(size % layout.record) + " bytes)";
      const Layout other = layout_of(layout.variant == "cifar10" ? "cifar100" : "cifar10", "fine");
      if (size % other.record == 0) message += "; it would fit " + other.variant + ": check `variant`";
      return Status(ErrorCode::kParseError, message);
    }
    records.push_back(size / layout.record);
    total += records.back();
  }
  const std::int64_t used = options.limit > 0 ? std::min(options.limit, total) : total;

  torch::Tensor pixels;
  torch::Tensor targets;
  try {
    pixels = torch::empty({used, 3, kSide, kSide}, torch::kUInt8);
    targets = torch::empty({used}, torch::kInt64);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime,
                  "cannot allocate " + std::to_string(used) + " CIFAR images: " + e.what());
  }
  auto* pixel_out = pixels.data_ptr<std::uint8_t>();
  auto* label_out = targets.data_ptr<std::int64_t>();
  std::vector<char> chunk(static_cast<std::size_t>(kRecordsPerChunk * layout.record));
  std::int64_t sample = 0;
  for (std::size_t f = 0; f < options.files.size() && sample < used; ++f) {
    const fs::path& file = options.files[f];
    std::ifstream in(file, std::ios::binary);
    if (!in) return Status(ErrorCode::kIo, "cannot open " + file.string());
    const std::int64_t wanted = std::min(records[f], used - sample);
    for (std::int64_t record = 0; record < wanted;) {
      const std::int64_t n = std::min(kRecordsPerChunk, wanted - record);
      if (!in.read(chunk.data(), n * layout.record))
        return Status(ErrorCode::kIo, file.string() + ": read failed at record " + std::to_string(record));
      for (std::int64_t i = 0; i < n; ++i, ++record, ++sample) {
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(chunk.data() + i * layout.record);
        // Both labels of a cifar100 record are checked: a bad byte in either means a damaged file.
        for (const LabelByte& check : label_bytes(layout.variant)) {
          if (bytes[check.offset] >= check.classes)
            return Status(ErrorCode::kValidation,
                          file.string() + ": record " + std::to_string(record) + " has " + check.name +
                              " label " + std::to_string(bytes[check.offset]) + ", out of range for " +
                              layout.variant + " (" + std::to_string(check.classes) + " classes)");
        }
        label_out[sample] = bytes[layout.label_offset];
        const std::int64_t header = layout.record - kPixels;
        std::copy(bytes + header, bytes + layout.record, pixel_out + sample * kPixels);
      }
    }
  }

  DatasetInfo info;
  info.format = "cifar";
  for (const fs::path& file : options.files) info.source += (info.source.empty() ? "" : ", ") + file.string();
  info.size = used;
  info.num_classes = layout.num_classes;
  info.class_names = class_names_near(options.files.front(), layout);
  PROFAGENT_ASSIGN_OR_RETURN(info.sample_shape,
                             profagent::datasets::checked_sample_shape(transforms, 3, kSide, kSide));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  profagent::log().debug("cifar: {} of {} {} samples from {} in {:.0f} ms", used, total, layout.variant,
                         info.source, ms);
  return std::unique_ptr<profagent::Provider>(std::make_unique<profagent::datasets::InMemoryDataset>(
      std::move(info), transforms, std::move(pixels), std::move(targets)));
}

profagent::ProviderFactory make_cifar_factory() {
  profagent::ProviderFactory factory;
  factory.id = "cifar";
  factory.interface = profagent::torch_tk::kDatasetInterface;
  factory.summary =
      "CIFAR-10 / CIFAR-100 binary files (data_batch_*.bin, test_batch.bin, train.bin, test.bin).";
  static const profagent::OptionsSchema<CifarOptions> schema = [] {
    using O = CifarOptions;
    profagent::OptionsSchema<O> s;
    s.field_without_default("files", &O::files)
        .min(1)
        .required()
        .describe("the binary files, read in this order, e.g. [data_batch_1.bin, ..., data_batch_5.bin]");
    s.field("variant", &O::variant, ConfigType::kEnum)
        .choices({"cifar10", "cifar100"})
        .describe("record layout: cifar10 (label + 3072 pixels) or cifar100 (coarse + fine label + 3072)");
    s.field("label", &O::label, ConfigType::kEnum)
        .choices({"fine", "coarse"})
        .describe("cifar100 only: the 100 fine classes or the 20 coarse superclasses");
    profagent::datasets::add_limit_field(s, &O::limit);
    s.fields_from(&O::transforms, profagent::torch_tk::add_transform_fields, profagent::torch_tk::transforms_from_config);
    return s;
  }();
  profagent::bind_provider_options<CifarOptions>(
      factory, schema, [](CifarOptions options) { return load_cifar(options, options.transforms); });
  return factory;
}

void register_dataset_cifar(profagent::Registrar& registrar) {
  registrar.add_provider(make_cifar_factory());
}

}  // namespace

PROFAGENT_PLUGIN("dataset_cifar", "0.1.0", register_dataset_cifar);
