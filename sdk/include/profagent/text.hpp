#pragma once
// Small text helpers for messages: joining names, trimming, and "did you mean" suggestions for typos in
// keys, agent ids, stage ids and enum values.
#include <cstddef>
#include <string>
#include <vector>

#include "profagent/version.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

PROFAGENT_SDK_API std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

// Optimal string alignment distance: a swapped pair of letters ("ratoi") counts as one typo.
PROFAGENT_SDK_API std::size_t edit_distance(const std::string& a, const std::string& b);

// Up to `max_results` candidates that look like a typo of `word` (case-insensitive), closest first.
// Short words get no suggestion ("b" is not a typo of "a"); a candidate containing the word (or
// contained in it, for words of 3+ letters) counts as close.
PROFAGENT_SDK_API std::vector<std::string> close_matches(const std::string& word, const std::vector<std::string>& candidates,
                                                         std::size_t max_results = 3);

// `text` without leading and trailing white space.
PROFAGENT_SDK_API std::string trim(const std::string& text);

// The lines of `text`, each trimmed, empty ones left out.
PROFAGENT_SDK_API std::vector<std::string> non_empty_lines(const std::string& text);

PROFAGENT_ABI_NAMESPACE_END
