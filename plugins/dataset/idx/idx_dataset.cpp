// The "idx" dataset provider: MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST), an images file
// (magic 0x00000803: unsigned bytes, N × rows × cols) and a labels file (0x00000801: N unsigned
// bytes), each plain or gzip-compressed. Everything is loaded at construction into one uint8
// [N, 1, rows, cols] tensor; the files are checked end to end (magic, counts, exact length, labels).
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dataset_common.hpp"
#include "profagent/log.hpp"
#include "profagent/plugin.hpp"

namespace {

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Result;
using profagent::Status;
using profagent::datasets::DatasetInfo;
using profagent::datasets::Transforms;

constexpr std::uint32_t kImagesMagic = 0x00000803;
constexpr std::uint32_t kLabelsMagic = 0x00000801;

std::string hex(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::uint32_t big_endian(const unsigned char* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

// One IDX file opened through zlib, which reads gzip and plain files alike, counting the
// (decompressed) bytes so that a length mismatch can say exactly how many there were.
class IdxReader {
 public:
  static Result<std::unique_ptr<IdxReader>> open(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      return Status(ErrorCode::kNotFound, "IDX file " + path.string() + " does not exist or is not a file");
    gzFile file = gzopen(path.c_str(), "rb");
    if (!file) return Status(ErrorCode::kIo, "cannot open IDX file " + path.string());
    gzbuffer(file, 1 << 17);  // zlib's 8 KiB default costs a visible share of loading 47 MB
    return std::unique_ptr<IdxReader>(new IdxReader(path, file));
  }
  ~IdxReader() { gzclose(file_); }
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  // Reads up to `size` bytes into `buffer`; fewer only at the end of the data. A corrupt gzip
  // stream is an error; a truncated one just ends early (the length check then reports it).
  Result<std::int64_t> read(void* buffer, std::int64_t size) {
    auto* out = static_cast<unsigned char*>(buffer);
    std::int64_t done = 0;
    while (done < size) {
      const auto chunk = static_cast<unsigned>(std::min<std::int64_t>(size - done, 1 << 30));
      const int got = gzread(file_, out + done, chunk);
      if (got < 0) {
        int code = Z_OK;
        std::string message = gzerror(file_, &code);
        // zlib prefixes its messages with the path, which ours already starts with.
        if (message.rfind(path_.string() + ": ", 0) == 0) message.erase(0, path_.string().size() + 2);
        return Status(ErrorCode::kParseError, path_.string() + ": corrupt gzip data (" + message + ")");
      }
      if (got == 0) break;
      done += got;
    }
    total_ += done;
    return done;
  }

  // Reads and discards up to `size` bytes, returning how many there were.
  Result<std::int64_t> skip(std::int64_t size) {
    std::array<unsigned char, 1 << 16> scratch;
    std::int64_t done = 0;
    while (done < size) {
      auto got = read(scratch.data(), std::min<std::int64_t>(size - done, scratch.size()));
      if (!got) return got;
      if (*got == 0) break;
      done += *got;
    }
    return done;
  }

  // Reads the magic and dimensions. `expected_dims` is what the magic implies (3 or 1).
  Result<std::vector<std::int64_t>> header(std::uint32_t expected_magic, int expected_dims,
                                           const char* what) {
    unsigned char bytes[4 * 4];
    const std::int64_t header_size = 4 + 4 * expected_dims;
    auto got = read(bytes, 4);
    if (!got) return std::move(got).take_status();
    if (*got < 4) return short_header(header_size);
    const std::uint32_t magic = big_endian(bytes);
    if (magic != expected_magic) {
      std::string message = path_.string() + ": wrong magic " + hex(magic) + ", expected " +
                            hex(expected_magic) + " (IDX " + what + ")";
      if (magic == kImagesMagic || magic == kLabelsMagic)
        message += std::string("; this is an IDX ") + (magic == kImagesMagic ? "images" : "labels") +
                   " file: are `images` and `labels` swapped?";
      else if (bytes[0] == 0x1f && bytes[1] == 0x8b)
        message += "; the file is gzip data that zlib could not read";
      return Status(ErrorCode::kParseError, message);
    }
    got = read(bytes, 4 * expected_dims);
    if (!got) return std::move(got).take_status();
    if (*got < 4 * expected_dims) return short_header(header_size);
    std::vector<std::int64_t> dims;
    for (int i = 0; i < expected_dims; ++i) dims.push_back(big_endian(bytes + 4 * i));
    return dims;
  }

  // After the data: the bytes read so far must be the whole file.
  Status expect_end(std::int64_t expected_total) {
    if (total_ < expected_total) return short_file(expected_total);
    auto extra = skip(std::numeric_limits<std::int64_t>::max());
    if (!extra) return std::move(extra).take_status();
    if (*extra > 0)
      return Status(ErrorCode::kParseError,
                    path_.string() + ": " + std::to_string(*extra) + " unexpected bytes after the " +
                        std::to_string(expected_total) + " bytes its header describes" + decompressed());
    return Status::ok();
  }

  Status short_file(std::int64_t expected_total) const {
    return Status(ErrorCode::kParseError, path_.string() + ": short file: expected " +
                                              std::to_string(expected_total) + " bytes, got " +
                                              std::to_string(total_) + decompressed());
  }

  std::int64_t total() const { return total_; }

 private:
  IdxReader(fs::path path, gzFile file) : path_(std::move(path)), file_(file) {}

  Status short_header(std::int64_t header_size) const {
    return Status(ErrorCode::kParseError, path_.string() + ": short file: expected at least " +
                                              std::to_string(header_size) + " bytes of IDX header, got " +
                                              std::to_string(total_) + decompressed());
  }
  std::string decompressed() const {
    if (gzdirect(file_)) return "";
    int code = Z_OK;
    gzerror(file_, &code);
    return code == Z_BUF_ERROR ? " (after gzip decompression; the gzip stream ends early)"
                               : " (after gzip decompression)";
  }

  fs::path path_;
  gzFile file_;
  std::int64_t total_ = 0;
};

struct IdxOptions {
  fs::path images;
  fs::path labels;
  std::int64_t limit = 0;        // 0: all
  std::int64_t num_classes = 0;  // 0: max label + 1
  Transforms transforms;
};

Result<std::unique_ptr<profagent::Provider>> load_idx(const IdxOptions& options,
                                                      const Transforms& transforms) {
  const auto started = std::chrono::steady_clock::now();
  PROFAGENT_ASSIGN_OR_RETURN(auto images, IdxReader::open(options.images));
  PROFAGENT_ASSIGN_OR_RETURN(auto labels, IdxReader::open(options.labels));
  PROFAGENT_ASSIGN_OR_RETURN(auto image_dims,
                             images->header(kImagesMagic, 3, "unsigned-byte images, 3 dims"));
  PROFAGENT_ASSIGN_OR_RETURN(auto label_dims, labels->header(kLabelsMagic, 1, "unsigned-byte labels, 1 dim"));
  const std::int64_t count = image_dims[0], rows = image_dims[1], cols = image_dims[2];
  if (count != label_dims[0])
    return Status(ErrorCode::kValidation, options.images.string() + " has " + std::to_string(count) +
                                              " images but " + options.labels.string() + " has " +
                                              std::to_string(label_dims[0]) + " labels");
  if (rows <= 0 || cols <= 0)
    return Status(ErrorCode::kParseError, options.images.string() + ": images of " + std::to_string(rows) +
                                              "x" + std::to_string(cols) + " pixels");
  if (count == 0) return Status(ErrorCode::kValidation, options.images.string() + " holds no images");
  std::int64_t image_bytes = 0;
  std::int64_t all_bytes = 0;
  if (__builtin_mul_overflow(rows, cols, &image_bytes) ||
      __builtin_mul_overflow(image_bytes, count, &all_bytes))
    return Status(ErrorCode::kParseError, options.images.string() + ": header claims " +
                                              std::to_string(count) + " images of " + std::to_string(rows) +
                                              "x" + std::to_string(cols) +
                                              " pixels, more than can be addressed");
  const std::int64_t used = options.limit > 0 ? std::min(options.limit, count) : count;

  torch::Tensor pixels;
  torch::Tensor targets;
  try {
    pixels = torch::empty({used, 1, rows, cols}, torch::kUInt8);
    targets = torch::empty({used}, torch::kInt64);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, options.images.string() + ": cannot allocate " + std::to_string(used) +
                                           " images: " + e.what());
  }
  // The whole file is read even with a limit: a damaged file should not pass because of one.
  // A short file leaves the tail of `pixels` unwritten; expect_end() then refuses it.
  PROFAGENT_RETURN_IF_ERROR(images->read(pixels.data_ptr<std::uint8_t>(), used * image_bytes).status());
  PROFAGENT_RETURN_IF_ERROR(images->skip((count - used) * image_bytes).status());
  PROFAGENT_RETURN_IF_ERROR(images->expect_end(16 + all_bytes));

  std::vector<std::uint8_t> raw_labels(static_cast<std::size_t>(used));
  PROFAGENT_RETURN_IF_ERROR(labels->read(raw_labels.data(), used).status());
  PROFAGENT_RETURN_IF_ERROR(labels->skip(count - used).status());
  PROFAGENT_RETURN_IF_ERROR(labels->expect_end(8 + count));

  std::int64_t num_classes = options.num_classes;
  if (num_classes == 0) {
    num_classes = *std::max_element(raw_labels.begin(), raw_labels.end()) + 1;
  } else {
    for (std::size_t i = 0; i < raw_labels.size(); ++i) {
      if (raw_labels[i] >= num_classes)
        return Status(ErrorCode::kValidation, options.labels.string() + ": label " +
                                                  std::to_string(raw_labels[i]) + " of sample " +
                                                  std::to_string(i) + " is out of range: num_classes is " +
                                                  std::to_string(num_classes));
    }
  }
  std::copy(raw_labels.begin(), raw_labels.end(), targets.data_ptr<std::int64_t>());

  DatasetInfo info;
  info.format = "idx";
  info.source = options.images.string() + ", " + options.labels.string();
  info.size = used;
  info.num_classes = num_classes;
  PROFAGENT_ASSIGN_OR_RETURN(info.sample_shape,
                             profagent::datasets::checked_sample_shape(transforms, 1, rows, cols));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  profagent::log().debug("idx: {} of {} samples of 1x{}x{}, {} classes, from {} in {:.0f} ms", used, count,
                         rows, cols, num_classes, info.source, ms);
  return std::unique_ptr<profagent::Provider>(std::make_unique<profagent::datasets::InMemoryDataset>(
      std::move(info), transforms, std::move(pixels), std::move(targets)));
}

profagent::ProviderFactory make_idx_factory() {
  profagent::ProviderFactory factory;
  factory.id = "idx";
  factory.interface = profagent::torch_tk::kDatasetInterface;
  factory.summary =
      "MNIST-style IDX files (MNIST, Fashion-MNIST), plain or gzip: one images file and one labels file.";
  static const profagent::OptionsSchema<IdxOptions> schema = [] {
    using O = IdxOptions;
    profagent::OptionsSchema<O> s;
    s.field_without_default("images", &O::images)
        .required()
        .describe("the IDX images file (magic 0x00000803), e.g. t10k-images-idx3-ubyte.gz");
    s.field_without_default("labels", &O::labels)
        .required()
        .describe("the IDX labels file (magic 0x00000801), e.g. t10k-labels-idx1-ubyte.gz");
    profagent::datasets::add_limit_field(s, &O::limit);
    s.field_without_default("num_classes", &O::num_classes)
        .min(1)
        .describe("number of classes; labels at or above it are refused. Default: the largest label + 1");
    s.fields_from(&O::transforms, profagent::torch_tk::add_transform_fields, profagent::torch_tk::transforms_from_config);
    return s;
  }();
  profagent::bind_provider_options<IdxOptions>(
      factory, schema, [](IdxOptions options) { return load_idx(options, options.transforms); });
  return factory;
}

void register_dataset_idx(profagent::Registrar& registrar) {
  registrar.add_provider(make_idx_factory());
}

}  // namespace

PROFAGENT_PLUGIN("dataset_idx", "0.1.0", register_dataset_idx);
