#pragma once
// File helpers with the guarantees the run directory needs: a file is either absent or complete.
#include <filesystem>
#include <string>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

// Writes to "<path>.tmp-<pid>" then renames over `path`, so readers never see half a file.
PROFAGENT_SDK_API Status write_file_atomic(const std::filesystem::path& path, const std::string& content);
PROFAGENT_SDK_API Status write_json_atomic(const std::filesystem::path& path, const Json& value, int indent = 2);
PROFAGENT_SDK_API Result<std::string> read_file(const std::filesystem::path& path);
PROFAGENT_SDK_API Result<Json> read_json(const std::filesystem::path& path);
// Hex SHA-256 of a file's bytes (used for provenance of models and datasets).
PROFAGENT_SDK_API Result<std::string> sha256_file(const std::filesystem::path& path);
PROFAGENT_SDK_API std::string sha256_hex(const std::string& bytes);

PROFAGENT_ABI_NAMESPACE_END
