// Datasets: the declared transforms and sampling helpers of the SDK, and the idx, cifar and
// image_folder providers loaded through their real plugin libraries. Real data where there is some
// (Fashion-MNIST from the Debian package dataset-fashion-mnist); small files written here for the
// formats and damages that no package ships.
#include "torch_doctest.hpp"
#include "profagent/torch/dataset.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "test_support.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::Result;
using profagent::Status;
using profagent::torch_tk::Batch;
using profagent::torch_tk::calibration_indices;
using profagent::torch_tk::Dataset;
using profagent::torch_tk::sequential_batches;
using profagent::torch_tk::Transforms;

using profagent::test::contains;
using profagent::test::TempDir;

namespace {

const fs::path kFashion = "/usr/share/datasets/fashion-mnist";
const char* const kDatasetPlugins[] = {"dataset_idx", "dataset_cifar", "dataset_image_folder"};

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string big_endian(std::uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
          static_cast<char>(value)};
}

// An IDX file: magic, dimensions, then the payload as given (which may disagree with them).
std::string idx_file(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                     const std::string& payload) {
  std::string bytes = big_endian(magic);
  for (std::uint32_t dim : dims) bytes += big_endian(dim);
  return bytes + payload;
}

std::string bytes_of(const std::vector<int>& values) {
  std::string out;
  for (int value : values) out.push_back(static_cast<char>(value));
  return out;
}

// The dataset plugins, loaded once by the kernel's real plugin manager.
profagent::kernel::Registry& registry() {
  static profagent::kernel::Registry registry;
  static profagent::kernel::PluginManager manager(registry);
  static const bool loaded = [] {
    for (const char* name : kDatasetPlugins)
      manager.load_file(
          (fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR) / ("lib" + std::string(name) + ".so")).string());
    return true;
  }();
  (void)loaded;
  return registry;
}

Result<std::unique_ptr<Dataset>> make_dataset(const std::string& id, const Json& config) {
  const profagent::ProviderFactory* factory =
      registry().find_provider(profagent::torch_tk::kDatasetInterface, id);
  if (!factory) {
    std::string why = "no dataset provider '" + id + "'";
    for (const auto& record : registry().plugins())
      if (!record.loaded) why += "; refused " + record.path + ": " + record.refusal;
    return Status(ErrorCode::kNotFound, why);
  }
  auto config_values = factory->config.resolve(config);
  if (!config_values) return std::move(config_values).take_status();
  auto made = factory->make(*config_values);
  if (!made) return std::move(made).take_status();
  auto* dataset = dynamic_cast<Dataset*>(made.value().get());
  if (!dataset) return Status(ErrorCode::kInternal, "provider '" + id + "' is not a Dataset");
  made.value().release();
  return std::unique_ptr<Dataset>(dataset);
}

std::unique_ptr<Dataset> require_dataset(const std::string& id, const Json& config) {
  auto made = make_dataset(id, config);
  REQUIRE_MESSAGE(made.is_ok(), made.status().to_string());
  return std::move(made).value();
}

std::string error_of(const std::string& id, const Json& config) {
  auto made = make_dataset(id, config);
  return made.is_ok() ? "no error" : made.status().message();
}

Json fashion_test(Json extra = Json::object()) {
  Json config{{"images", (kFashion / "t10k-images-idx3-ubyte.gz").string()},
              {"labels", (kFashion / "t10k-labels-idx1-ubyte.gz").string()}};
  for (auto it = extra.begin(); it != extra.end(); ++it) config[it.key()] = it.value();
  return config;
}

std::vector<std::int64_t> to_vector(const torch::Tensor& tensor) {
  const torch::Tensor flat = tensor.to(torch::kInt64).contiguous();
  return std::vector<std::int64_t>(flat.data_ptr<std::int64_t>(),
                                   flat.data_ptr<std::int64_t>() + flat.numel());
}

void apply_ok(const Transforms& transforms, const torch::Tensor& raw, torch::Tensor& out) {
  Status status = transforms.apply(raw, out);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
}

// A CIFAR-10 record: the label, then 3072 pixel bytes whose values follow from (record, position).
std::string cifar10_record(int label, int record) {
  std::string bytes(1, static_cast<char>(label));
  for (int i = 0; i < 3072; ++i) bytes.push_back(static_cast<char>((record * 7 + i) % 256));
  return bytes;
}

}  // namespace

// ---- transforms -----------------------------------------------------------------------------------

TEST_CASE("transforms scale uint8 pixels to float32 values between 0 and 1 by default") {
  const torch::Tensor raw = torch::tensor({0, 51, 102, 255}, torch::kUInt8).reshape({1, 1, 2, 2});
  torch::Tensor out;
  apply_ok(Transforms{}, raw, out);
  CHECK((out.scalar_type() == torch::kFloat32));
  CHECK(out.sizes() == torch::IntArrayRef({1, 1, 2, 2}));
  CHECK(torch::allclose(out.flatten(), torch::tensor({0.0f, 0.2f, 0.4f, 1.0f})));
}

TEST_CASE("normalize subtracts each channel's mean and divides by its std after scaling pixels to 0..1") {
  const torch::Tensor raw = torch::tensor({0, 51, 102, 255}, torch::kUInt8).reshape({1, 1, 2, 2});
  Transforms transforms;
  transforms.mean = {0.5};
  transforms.std = {0.25};
  torch::Tensor out;
  apply_ok(transforms, raw, out);
  CHECK(torch::allclose(out.flatten(), torch::tensor({-2.0f, -1.2f, -0.4f, 2.0f})));
}

TEST_CASE("a grey batch replicated to 3 channels gets each channel's own mean and std") {
  const torch::Tensor raw = torch::full({2, 1, 3, 3}, 255, torch::kUInt8);
  Transforms transforms;
  transforms.channels = 3;
  transforms.mean = {0.0, 0.5, 1.0};
  transforms.std = {1.0, 0.5, 0.25};
  torch::Tensor out;
  apply_ok(transforms, raw, out);
  REQUIRE(out.sizes() == torch::IntArrayRef({2, 3, 3, 3}));
  CHECK(torch::allclose(out.select(1, 0), torch::full({2, 3, 3}, 1.0f)));
  CHECK(torch::allclose(out.select(1, 1), torch::full({2, 3, 3}, 1.0f)));
  CHECK(torch::allclose(out.select(1, 2), torch::full({2, 3, 3}, 0.0f)));
  CHECK(transforms.output_shape(1, 3, 3) == std::vector<std::int64_t>{3, 3, 3});
}

TEST_CASE(
    "resize makes the shorter side the given size with bilinear interpolation and keeps the aspect ratio") {
  // Bilinear, align_corners=false: a 2-pixel edge 0|255 doubled becomes 0, 1/4, 3/4, 1.
  const torch::Tensor raw = torch::tensor({0, 255, 0, 255}, torch::kUInt8).reshape({1, 1, 2, 2});
  Transforms transforms;
  transforms.resize = 4;
  torch::Tensor out;
  apply_ok(transforms, raw, out);
  REQUIRE(out.sizes() == torch::IntArrayRef({1, 1, 4, 4}));
  CHECK(torch::allclose(out[0][0][2], torch::tensor({0.0f, 0.25f, 0.75f, 1.0f})));

  Transforms imagenet;
  imagenet.resize = 256;
  CHECK(imagenet.output_shape(3, 375, 500) == std::vector<std::int64_t>{3, 256, 341});
  CHECK(imagenet.output_shape(3, 500, 375) == std::vector<std::int64_t>{3, 341, 256});
  imagenet.center_crop = 224;
  CHECK(imagenet.output_shape(3, 375, 500) == std::vector<std::int64_t>{3, 224, 224});
  torch::Tensor photo;
  apply_ok(imagenet, torch::randint(0, 256, {2, 3, 375, 500}, torch::kUInt8), photo);
  CHECK(photo.sizes() == torch::IntArrayRef({2, 3, 224, 224}));
}

TEST_CASE("center crop takes the middle square with torchvision's rounding of the offsets") {
  const torch::Tensor grid = torch::arange(25, torch::kUInt8).reshape({1, 1, 5, 5});
  Transforms transforms;
  transforms.center_crop = 3;
  torch::Tensor out;
  apply_ok(transforms, grid, out);
  const torch::Tensor expected = grid.narrow(2, 1, 3).narrow(3, 1, 3).to(torch::kFloat32) / 255.0;
  CHECK(torch::allclose(out, expected));

  // (4 - 1) / 2 = 1.5 and (6 - 1) / 2 = 2.5 both round to 2, as Python's round() does.
  transforms.center_crop = 1;
  apply_ok(transforms, torch::arange(16, torch::kUInt8).reshape({1, 1, 4, 4}), out);
  CHECK(out.item<float>() * 255.0f == doctest::Approx(2 * 4 + 2));
  apply_ok(transforms, torch::arange(36, torch::kUInt8).reshape({1, 1, 6, 6}), out);
  CHECK(out.item<float>() * 255.0f == doctest::Approx(2 * 6 + 2));
}

TEST_CASE("the dtype transform yields float16 or bfloat16 tensors of the same values") {
  const torch::Tensor raw = torch::randint(0, 256, {4, 1, 5, 5}, torch::kUInt8);
  Transforms reference;
  reference.mean = {0.3};
  reference.std = {0.7};
  torch::Tensor expected;
  apply_ok(reference, raw, expected);
  for (auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    Transforms transforms = reference;
    transforms.dtype = dtype;
    torch::Tensor out;
    apply_ok(transforms, raw, out);
    CHECK((out.scalar_type() == dtype));
    CHECK(torch::allclose(out.to(torch::kFloat32), expected, /*rtol=*/1e-2, /*atol=*/1e-2));
  }
}

TEST_CASE("transforms write into the output tensor they were given when its shape and dtype fit") {
  const torch::Tensor raw = torch::randint(0, 256, {8, 1, 28, 28}, torch::kUInt8);
  Transforms transforms;
  transforms.channels = 3;
  transforms.resize = 32;
  torch::Tensor out;
  apply_ok(transforms, raw, out);
  const void* first = out.data_ptr();
  apply_ok(transforms, torch::randint(0, 256, {8, 1, 28, 28}, torch::kUInt8), out);
  CHECK(out.data_ptr() == first);
  // Another batch size cannot fit: a new tensor.
  apply_ok(transforms, torch::randint(0, 256, {3, 1, 28, 28}, torch::kUInt8), out);
  CHECK(out.size(0) == 3);
}

TEST_CASE("impossible transforms are clear errors: channel counts, mean and std lengths, oversized crops") {
  torch::Tensor out;
  Transforms to_three;
  to_three.channels = 3;
  Status status = to_three.apply(torch::zeros({1, 2, 4, 4}, torch::kUInt8), out);
  CHECK(status.message() ==
        "channels: 2 input channel(s) cannot become 3; only 1 -> 3 replication is supported");

  Transforms mismatched;
  mismatched.mean = {0.5, 0.5};
  mismatched.std = {0.5, 0.5};
  status = mismatched.apply(torch::zeros({1, 3, 4, 4}, torch::kUInt8), out);
  CHECK(status.message() == "normalize: mean and std have 2 values but samples have 3 channel(s)");

  Transforms crop;
  crop.center_crop = 32;
  status = crop.apply(torch::zeros({1, 1, 28, 28}, torch::kUInt8), out);
  CHECK(status.message() == "center_crop 32 is larger than the image (1x28x28)");

  status = Transforms{}.apply(torch::zeros({1, 1, 4, 4}, torch::kFloat32), out);
  CHECK(status.code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("transform keys are declared in a schema and read back from a validated config") {
  profagent::ConfigSchema schema;
  profagent::torch_tk::add_transform_fields(schema);
  auto config = schema.resolve(Json{{"channels", 3},
                                    {"resize", 32},
                                    {"center_crop", 28},
                                    {"mean", {0.485, 0.456, 0.406}},
                                    {"std", {0.229, 0.224, 0.225}},
                                    {"dtype", "bfloat16"}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto transforms = profagent::torch_tk::transforms_from_config(*config);
  REQUIRE_MESSAGE(transforms.is_ok(), transforms.status().to_string());
  CHECK(transforms->channels == 3);
  CHECK(transforms->resize == 32);
  CHECK(transforms->center_crop == 28);
  CHECK(transforms->mean == std::vector<double>{0.485, 0.456, 0.406});
  CHECK(transforms->std == std::vector<double>{0.229, 0.224, 0.225});
  CHECK((transforms->dtype == torch::kBFloat16));

  auto defaults = profagent::torch_tk::transforms_from_config(*schema.resolve(Json::object()));
  REQUIRE(defaults.is_ok());
  CHECK((defaults->dtype == torch::kFloat32));
  CHECK(defaults->mean.empty());

  auto mean_only = profagent::torch_tk::transforms_from_config(*schema.resolve(Json{{"mean", {0.5}}}));
  CHECK(mean_only.status().message() == "mean is given without std: normalization needs both");
  CHECK(!schema.resolve(Json{{"dtype", "int8"}}).is_ok());
  CHECK(!schema.resolve(Json{{"resize", 0}}).is_ok());
}

// ---- sampling -------------------------------------------------------------------------------------

TEST_CASE("calibration indices are distinct, in range, and the same for the same seed") {
  const auto first = calibration_indices(10000, 512, 42);
  CHECK(first.size() == 512);
  CHECK(std::set<std::int64_t>(first.begin(), first.end()).size() == 512);
  CHECK(std::all_of(first.begin(), first.end(), [](std::int64_t i) { return i >= 0 && i < 10000; }));
  CHECK(calibration_indices(10000, 512, 42) == first);
  CHECK(calibration_indices(10000, 512, 43) != first);
  // A smaller sample with the same seed is a prefix of the larger one.
  const auto few = calibration_indices(10000, 16, 42);
  CHECK(std::equal(few.begin(), few.end(), first.begin()));
}

TEST_CASE("calibration indices are pinned values, so every platform calibrates on the same samples") {
  // mt19937_64 is fully specified by the standard and the shuffle is our own code: these numbers
  // may never change, or calibrations recorded elsewhere stop being reproducible.
  CHECK(calibration_indices(10000, 5, 0) == std::vector<std::int64_t>{5694, 6243, 5327, 4363, 1052});
  CHECK(calibration_indices(60000, 5, 1234) == std::vector<std::int64_t>{13472, 44369, 25168, 54314, 31559});
}

TEST_CASE("asking for more calibration samples than exist gives every index once, shuffled") {
  const auto all = calibration_indices(100, 1000, 7);
  REQUIRE(all.size() == 100);
  std::vector<std::int64_t> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 100; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);
  CHECK(all != sorted);
  CHECK(calibration_indices(100, 0, 7).empty());
  CHECK(calibration_indices(0, 10, 7).empty());
}

TEST_CASE("sequential batches cover every index in order with a shorter last batch") {
  const auto batches = sequential_batches(10, 4);
  REQUIRE(batches.size() == 3);
  CHECK(batches[0] == std::vector<std::int64_t>{0, 1, 2, 3});
  CHECK(batches[1] == std::vector<std::int64_t>{4, 5, 6, 7});
  CHECK(batches[2] == std::vector<std::int64_t>{8, 9});
  CHECK(sequential_batches(0, 4).empty());
  CHECK(sequential_batches(8, 4).size() == 2);
}

TEST_CASE("dataset info summarizes as JSON") {
  profagent::torch_tk::DatasetInfo info;
  info.format = "idx";
  info.source = "a, b";
  info.size = 3;
  info.num_classes = 10;
  info.sample_shape = {1, 28, 28};
  const Json json = info.to_json();
  CHECK(json["format"] == "idx");
  CHECK(json["size"] == 3);
  CHECK(json["num_classes"] == 10);
  CHECK(json["sample_shape"] == Json::array({1, 28, 28}));
  CHECK(json["class_names"] == Json::array());
}

// ---- idx: Fashion-MNIST and damaged files ---------------------------------------------------------

TEST_CASE("the Fashion-MNIST test set loads through the idx plugin with its real labels") {
  auto dataset = require_dataset("idx", fashion_test());
  const auto& info = dataset->info();
  CHECK(info.format == "idx");
  CHECK(info.size == 10000);
  CHECK(info.num_classes == 10);
  CHECK(info.sample_shape == std::vector<std::int64_t>{1, 28, 28});

  Batch batch;
  Status status = dataset->read_batch({0, 1, 2, 3, 4}, batch);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{9, 2, 1, 1, 6});
  CHECK(batch.images.sizes() == torch::IntArrayRef({5, 1, 28, 28}));
  CHECK((batch.images.scalar_type() == torch::kFloat32));
  CHECK(batch.images.min().item<float>() >= 0.0f);
  CHECK(batch.images.max().item<float>() <= 1.0f);

  // The whole test set: every class has 1000 samples, and the mean pixel is Fashion-MNIST's ~0.286.
  status = dataset->read_batch(sequential_batches(10000, 10000).front(), batch);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  CHECK(to_vector(torch::bincount(batch.labels)) == std::vector<std::int64_t>(10, 1000));
  CHECK(batch.images.mean().item<double>() == doctest::Approx(0.286).epsilon(0.02));
}

TEST_CASE("the Fashion-MNIST training set has 60000 samples of 10 classes, and limit keeps the first ones") {
  Json train{{"images", (kFashion / "train-images-idx3-ubyte.gz").string()},
             {"labels", (kFashion / "train-labels-idx1-ubyte.gz").string()}};
  auto dataset = require_dataset("idx", train);
  CHECK(dataset->info().size == 60000);
  CHECK(dataset->info().num_classes == 10);

  auto limited = require_dataset("idx", fashion_test({{"limit", 3}}));
  CHECK(limited->info().size == 3);
  Batch batch;
  REQUIRE(limited->read_batch({0, 1, 2}, batch).is_ok());
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{9, 2, 1});
}

TEST_CASE("reading batches of one size reuses the same image and label tensors") {
  auto dataset = require_dataset(
      "idx",
      fashion_test({{"channels", 3}, {"resize", 32}, {"mean", {0.5, 0.5, 0.5}}, {"std", {0.5, 0.5, 0.5}}}));
  CHECK(dataset->info().sample_shape == std::vector<std::int64_t>{3, 32, 32});
  const auto batches = sequential_batches(dataset->info().size, 64);
  Batch batch;
  REQUIRE(dataset->read_batch(batches[0], batch).is_ok());
  CHECK(batch.images.sizes() == torch::IntArrayRef({64, 3, 32, 32}));
  const void* images = batch.images.data_ptr();
  const void* labels = batch.labels.data_ptr();
  const torch::Tensor first = batch.images.clone();
  for (std::size_t i = 1; i < 4; ++i) {
    REQUIRE(dataset->read_batch(batches[i], batch).is_ok());
    CHECK(batch.images.data_ptr() == images);
    CHECK(batch.labels.data_ptr() == labels);
  }
  CHECK(!torch::equal(batch.images, first));
  CHECK(torch::equal(batch.images.select(1, 0), batch.images.select(1, 2)));
}

TEST_CASE("a batch index outside the dataset is refused with the index and the dataset size") {
  auto dataset = require_dataset("idx", fashion_test({{"limit", 100}}));
  Batch batch;
  Status status = dataset->read_batch({0, 100}, batch);
  CHECK(status.code() == ErrorCode::kInvalidArgument);
  CHECK(status.message() ==
        "index 100 (position 1 in the batch) is out of range: the idx dataset has 100 samples (0..99)");
  CHECK(!dataset->read_batch({-1}, batch).is_ok());
}

TEST_CASE("a plain (uncompressed) IDX pair loads, and the transforms apply to it") {
  TempDir dir;
  write_bytes(dir.path() / "images",
              idx_file(0x803, {2, 2, 3}, bytes_of({0, 1, 2, 3, 4, 5, 255, 254, 253, 252, 251, 250})));
  write_bytes(dir.path() / "labels", idx_file(0x801, {2}, bytes_of({3, 1})));
  auto dataset = require_dataset(
      "idx", {{"images", (dir.path() / "images").string()}, {"labels", (dir.path() / "labels").string()}});
  CHECK(dataset->info().size == 2);
  CHECK(dataset->info().num_classes == 4);
  CHECK(dataset->info().sample_shape == std::vector<std::int64_t>{1, 2, 3});
  Batch batch;
  REQUIRE(dataset->read_batch({1, 0}, batch).is_ok());
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{1, 3});
  CHECK(to_vector((batch.images[0] * 255).round()) ==
        std::vector<std::int64_t>{255, 254, 253, 252, 251, 250});
}

TEST_CASE("an IDX file with the wrong magic is refused, naming the file and both magics") {
  TempDir dir;
  const fs::path images = dir.path() / "images";
  const fs::path labels = dir.path() / "labels";
  write_bytes(images, idx_file(0x804, {1, 2, 2}, std::string(4, '\0')));
  write_bytes(labels, idx_file(0x801, {1}, bytes_of({0})));
  Json config{{"images", images.string()}, {"labels", labels.string()}};
  CHECK(error_of("idx", config) ==
        images.string() + ": wrong magic 0x00000804, expected 0x00000803 (IDX unsigned-byte images, 3 dims)");

  // Labels given as images: the message says what the file is.
  config["images"] = labels.string();
  CHECK(contains(error_of("idx", config), "this is an IDX labels file: are `images` and `labels` swapped?"));
}

TEST_CASE("a short IDX file is refused with the expected and actual byte counts") {
  TempDir dir;
  const fs::path images = dir.path() / "images";
  const fs::path labels = dir.path() / "labels";
  write_bytes(images, idx_file(0x803, {3, 2, 2}, std::string(10, '\x7f')));  // 12 pixels declared
  write_bytes(labels, idx_file(0x801, {3}, bytes_of({0, 1, 2})));
  CHECK(error_of("idx", {{"images", images.string()}, {"labels", labels.string()}}) ==
        images.string() + ": short file: expected 28 bytes, got 26");

  write_bytes(images, std::string("\0\0\x08", 3));
  CHECK(error_of("idx", {{"images", images.string()}, {"labels", labels.string()}}) ==
        images.string() + ": short file: expected at least 16 bytes of IDX header, got 3");

  // A gzip stream cut in half: the real Fashion-MNIST labels, truncated.
  const std::string gz = read_bytes(kFashion / "t10k-labels-idx1-ubyte.gz");
  const fs::path cut = dir.path() / "labels.gz";
  write_bytes(cut, gz.substr(0, gz.size() / 2));
  const std::string message = error_of("idx", fashion_test({{"labels", cut.string()}}));
  CHECK(contains(message, cut.string() + ": short file: expected 10008 bytes, got "));
  CHECK(contains(message, "(after gzip decompression; the gzip stream ends early)"));

  // Trailing bytes are damage too.
  write_bytes(images, idx_file(0x803, {1, 1, 1}, bytes_of({1, 2})));
  write_bytes(labels, idx_file(0x801, {1}, bytes_of({0})));
  CHECK(error_of("idx", {{"images", images.string()}, {"labels", labels.string()}}) ==
        images.string() + ": 1 unexpected bytes after the 17 bytes its header describes");
}

TEST_CASE("corrupt gzip data is refused with the file and zlib's reason") {
  TempDir dir;
  std::string gz = read_bytes(kFashion / "t10k-labels-idx1-ubyte.gz");
  for (std::size_t i = 40; i < 200; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  const fs::path damaged = dir.path() / "labels.gz";
  write_bytes(damaged, gz);
  const std::string message = error_of("idx", fashion_test({{"labels", damaged.string()}}));
  CHECK(contains(message, damaged.string() + ": corrupt gzip data ("));
}

TEST_CASE("an IDX label at or above num_classes is refused with its sample index") {
  TempDir dir;
  const fs::path images = dir.path() / "images";
  const fs::path labels = dir.path() / "labels";
  write_bytes(images, idx_file(0x803, {4, 1, 1}, bytes_of({1, 2, 3, 4})));
  write_bytes(labels, idx_file(0x801, {4}, bytes_of({0, 9, 10, 2})));
  Json config{{"images", images.string()}, {"labels", labels.string()}, {"num_classes", 10}};
  CHECK(error_of("idx", config) ==
        labels.string() + ": label 10 of sample 2 is out of range: num_classes is 10");
  config["num_classes"] = 11;
  CHECK(require_dataset("idx", config)->info().num_classes == 11);
}

TEST_CASE("IDX images and labels of different counts are refused, naming both files") {
  TempDir dir;
  const fs::path images = dir.path() / "images";
  const fs::path labels = dir.path() / "labels";
  write_bytes(images, idx_file(0x803, {2, 1, 1}, bytes_of({1, 2})));
  write_bytes(labels, idx_file(0x801, {3}, bytes_of({0, 1, 2})));
  CHECK(error_of("idx", {{"images", images.string()}, {"labels", labels.string()}}) ==
        images.string() + " has 2 images but " + labels.string() + " has 3 labels");
  CHECK(contains(error_of("idx", {{"images", (dir.path() / "nope").string()}, {"labels", labels.string()}}),
                 "does not exist"));
}

TEST_CASE("transforms that cannot apply to the dataset's samples are refused when it is made") {
  CHECK(error_of("idx", fashion_test({{"center_crop", 32}})) ==
        "center_crop 32 is larger than the image (1x28x28)");
  CHECK(error_of("idx", fashion_test({{"mean", {0.5, 0.5, 0.5}}, {"std", {0.5, 0.5, 0.5}}})) ==
        "normalize: mean and std have 3 values but samples have 1 channel(s)");
  CHECK(contains(error_of("idx", fashion_test({{"imagez", "x"}})), "unknown key 'imagez'"));
}

// ---- cifar ----------------------------------------------------------------------------------------

TEST_CASE("a CIFAR-10 binary reads back its labels and its pixels as red, green and blue planes") {
  TempDir dir;
  const fs::path file = dir.path() / "data_batch_1.bin";
  write_bytes(file, cifar10_record(3, 0) + cifar10_record(9, 1) + cifar10_record(0, 2));
  std::string names;
  for (const char* name :
       {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"})
    names += std::string(name) + "\n";
  write_bytes(dir.path() / "batches.meta.txt", names + "\n");

  auto dataset = require_dataset("cifar", {{"files", {file.string()}}});
  const auto& info = dataset->info();
  CHECK(info.format == "cifar");
  CHECK(info.size == 3);
  CHECK(info.num_classes == 10);
  CHECK(info.sample_shape == std::vector<std::int64_t>{3, 32, 32});
  REQUIRE(info.class_names.size() == 10);
  CHECK(info.class_names[3] == "cat");

  Batch batch;
  REQUIRE(dataset->read_batch({1, 2}, batch).is_ok());
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{9, 0});
  const auto pixels = to_vector((batch.images[0] * 255).round());
  REQUIRE(pixels.size() == 3072);
  for (int i : {0, 1, 1023, 1024, 2048, 3071}) CHECK(pixels[static_cast<std::size_t>(i)] == (7 + i) % 256);
}

TEST_CASE("CIFAR-100 records give fine or coarse labels, and several files are read in order") {
  TempDir dir;
  auto record = [](int coarse, int fine) {
    return std::string{static_cast<char>(coarse), static_cast<char>(fine)} + std::string(3072, '\x10');
  };
  const fs::path train = dir.path() / "train.bin";
  const fs::path test = dir.path() / "test.bin";
  write_bytes(train, record(3, 42) + record(19, 99));
  write_bytes(test, record(0, 7));
  Json config{{"files", {train.string(), test.string()}}, {"variant", "cifar100"}};
  auto fine = require_dataset("cifar", config);
  CHECK(fine->info().size == 3);
  CHECK(fine->info().num_classes == 100);
  Batch batch;
  REQUIRE(fine->read_batch({0, 1, 2}, batch).is_ok());
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{42, 99, 7});

  config["label"] = "coarse";
  auto coarse = require_dataset("cifar", config);
  CHECK(coarse->info().num_classes == 20);
  REQUIRE(coarse->read_batch({0, 1, 2}, batch).is_ok());
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{3, 19, 0});

  CHECK(error_of("cifar", {{"files", {train.string()}}, {"label", "coarse"}}) ==
        "label: coarse labels exist only in cifar100 (variant: cifar100)");
}

TEST_CASE("a truncated CIFAR record is refused with the file, its size and the record size") {
  TempDir dir;
  const fs::path file = dir.path() / "data_batch_1.bin";
  write_bytes(file, cifar10_record(1, 0) + cifar10_record(2, 1).substr(0, 100));
  CHECK(error_of("cifar", {{"files", {file.string()}}}) ==
        file.string() +
            ": truncated record: 3173 bytes is not a whole number of 3073-byte cifar10 records (1 complete, "
            "then "
            "100 bytes)");

  // CIFAR-100 data read as CIFAR-10: the hint names the variant.
  write_bytes(file, std::string(3074 * 3, '\0'));
  CHECK(contains(error_of("cifar", {{"files", {file.string()}}}), "it would fit cifar100: check `variant`"));
}

TEST_CASE("a CIFAR label out of range is refused with the file and the record") {
  TempDir dir;
  const fs::path file = dir.path() / "test_batch.bin";
  write_bytes(file, cifar10_record(1, 0) + cifar10_record(10, 1));
  CHECK(error_of("cifar", {{"files", {file.string()}}}) ==
        file.string() + ": record 1 has class label 10, out of range for cifar10 (10 classes)");

  write_bytes(file, std::string{'\x14', '\x01'} + std::string(3072, '\0'));
  CHECK(error_of("cifar", {{"files", {file.string()}}, {"variant", "cifar100"}}) ==
        file.string() + ": record 0 has coarse label 20, out of range for cifar100 (20 classes)");
}

// ---- image_folder ---------------------------------------------------------------------------------

namespace {

// root/cat/{a.png, b.jpg}, root/dog/{c.PNG, sub/d.jpeg, notes.txt}: classes cat=0, dog=1, 4 images.
// a.png is 8×6 RGB with pixel (y, x) = (10y + x, 100 + x, 200 - y), the others are solid colours.
void make_image_folder(const fs::path& root) {
  fs::create_directories(root / "cat");
  fs::create_directories(root / "dog" / "sub");
  std::vector<unsigned char> gradient;
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x)
      for (int value : {10 * y + x, 100 + x, 200 - y}) gradient.push_back(static_cast<unsigned char>(value));
  REQUIRE(stbi_write_png((root / "cat" / "a.png").c_str(), 8, 6, 3, gradient.data(), 8 * 3));
  auto solid = [](int w, int h, int r, int g, int b) {
    std::vector<unsigned char> pixels;
    for (int i = 0; i < w * h; ++i)
      for (int value : {r, g, b}) pixels.push_back(static_cast<unsigned char>(value));
    return pixels;
  };
  auto orange = solid(16, 12, 240, 128, 16);
  REQUIRE(stbi_write_jpg((root / "cat" / "b.jpg").c_str(), 16, 12, 3, orange.data(), 95));
  auto blue = solid(10, 10, 0, 0, 255);
  REQUIRE(stbi_write_png((root / "dog" / "c.PNG").c_str(), 10, 10, 3, blue.data(), 10 * 3));
  auto grey = solid(12, 20, 90, 90, 90);
  REQUIRE(stbi_write_jpg((root / "dog" / "sub" / "d.jpeg").c_str(), 12, 20, 3, grey.data(), 95));
  write_bytes(root / "dog" / "notes.txt", "not an image");
  write_bytes(root / "README", "not a class");
}

}  // namespace

TEST_CASE("an image folder's classes are its sorted sub-directories and its PNG and JPEG files decode") {
  TempDir dir;
  make_image_folder(dir.path());
  auto dataset = require_dataset("image_folder", {{"root", dir.path().string()}, {"center_crop", 4}});
  const auto& info = dataset->info();
  CHECK(info.format == "image_folder");
  CHECK(info.size == 4);
  CHECK(info.num_classes == 2);
  CHECK(info.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(info.sample_shape == std::vector<std::int64_t>{3, 4, 4});

  Batch batch;
  Status status = dataset->read_batch({0, 1, 2, 3}, batch);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{0, 0, 1, 1});
  CHECK(batch.images.sizes() == torch::IntArrayRef({4, 3, 4, 4}));
  // a.png, cropped at rows 1..4 and columns 2..5, is exact (PNG is lossless).
  const auto red = to_vector((batch.images[0][0] * 255).round());
  CHECK(red == std::vector<std::int64_t>{12, 13, 14, 15, 22, 23, 24, 25, 32, 33, 34, 35, 42, 43, 44, 45});
  CHECK(to_vector((batch.images[0][2][0] * 255).round()) == std::vector<std::int64_t>{199, 199, 199, 199});
  // The solid JPEGs decode close to their colours.
  CHECK(torch::allclose(batch.images[1].mean({1, 2}), torch::tensor({240, 128, 16}, torch::kFloat32) / 255.0,
                        0, 4.0 / 255.0));
  CHECK(torch::allclose(batch.images[2].mean({1, 2}), torch::tensor({0, 0, 255}, torch::kFloat32) / 255.0));
  CHECK(torch::allclose(batch.images[3].mean({1, 2}), torch::full({3}, 90.0f / 255.0f), 0, 4.0 / 255.0));

  const void* images = batch.images.data_ptr();
  REQUIRE(dataset->read_batch({3, 2, 1, 0}, batch).is_ok());
  CHECK(batch.images.data_ptr() == images);
  CHECK(to_vector(batch.labels) == std::vector<std::int64_t>{1, 1, 0, 0});
}

TEST_CASE("image folder images of different sizes are resized and cropped to one shape") {
  TempDir dir;
  make_image_folder(dir.path());
  auto dataset = require_dataset("image_folder", {{"root", dir.path().string()},
                                                  {"resize", 8},
                                                  {"center_crop", 6},
                                                  {"channels_in", 1},
                                                  {"channels", 3},
                                                  {"dtype", "float16"}});
  CHECK(dataset->info().sample_shape == std::vector<std::int64_t>{3, 6, 6});
  Batch batch;
  REQUIRE(dataset->read_batch({0, 1, 2, 3}, batch).is_ok());
  CHECK(batch.images.sizes() == torch::IntArrayRef({4, 3, 6, 6}));
  CHECK((batch.images.scalar_type() == torch::kFloat16));
  CHECK(torch::equal(batch.images.select(1, 0), batch.images.select(1, 1)));

  auto only_png = require_dataset(
      "image_folder",
      {{"root", dir.path().string()}, {"center_crop", 4}, {"extensions", {".PNG"}}, {"limit", 1}});
  CHECK(only_png->info().size == 1);
}

TEST_CASE("an image folder needs center_crop, a real root and images in every class") {
  TempDir dir;
  make_image_folder(dir.path());
  CHECK(
      contains(error_of("image_folder", {{"root", dir.path().string()}}), "image_folder needs center_crop"));
  CHECK(error_of("image_folder", {{"root", (dir.path() / "nope").string()}, {"center_crop", 4}}) ==
        "image_folder root " + (dir.path() / "nope").string() + " is not a directory");
  fs::create_directories(dir.path() / "empty");
  CHECK(error_of("image_folder", {{"root", dir.path().string()}, {"center_crop", 4}}) ==
        "image_folder class 'empty' (" + (dir.path() / "empty").string() +
            ") has no images (jpg, jpeg, png)");
  // An image too small for the crop is refused when it is read, naming it.
  fs::remove(dir.path() / "empty");
  auto dataset = require_dataset("image_folder", {{"root", dir.path().string()}, {"center_crop", 7}});
  Batch batch;
  Status status = dataset->read_batch({0}, batch);
  CHECK(status.message() == "center_crop 7 is larger than the image (3x6x8)");
  CHECK(status.to_string() == "center_crop 7 is larger than the image (3x6x8)\n  in image " +
                                  (dir.path() / "cat" / "a.png").string());
}

TEST_CASE("a corrupt PNG in an image folder is an error naming the file and the decoder's reason") {
  TempDir dir;
  make_image_folder(dir.path());
  const fs::path bad = dir.path() / "dog" / "bad.png";
  write_bytes(bad, std::string("\x89PNG\r\n\x1a\n", 8) + std::string(40, '\x42'));
  auto dataset = require_dataset("image_folder", {{"root", dir.path().string()}, {"center_crop", 4}});
  REQUIRE(dataset->info().size == 5);
  Batch batch;
  Status status = dataset->read_batch({0, 2}, batch);  // root/dog/bad.png sorts before c.PNG
  CHECK(status.code() == ErrorCode::kParseError);
  CHECK(contains(status.message(), "cannot decode image " + bad.string() + ": "));
  CHECK(status.message().size() > ("cannot decode image " + bad.string() + ": ").size());
  CHECK(dataset->read_batch({0, 1}, batch).is_ok());
}
