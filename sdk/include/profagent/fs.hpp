#pragma once
// File helpers with the guarantees the run directory needs: a file is either absent or complete.
#include <filesystem>
#include <string>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent {

// Writes to "<path>.tmp-<pid>" then renames over `path`, so readers never see half a file.
Status write_file_atomic(const std::filesystem::path& path, const std::string& content);
Status write_json_atomic(const std::filesystem::path& path, const Json& value, int indent = 2);
Result<std::string> read_file(const std::filesystem::path& path);
Result<Json> read_json(const std::filesystem::path& path);
// Hex SHA-256 of a file's bytes (used for provenance of models and datasets).
Result<std::string> sha256_file(const std::filesystem::path& path);
std::string sha256_hex(const std::string& bytes);

}  // namespace profagent
