// suggest.h: "did you mean" for a word baton does not know (a flag, a config key).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace baton::cli {

// The candidate nearest `word` by edit distance (insertions, deletions, substitutions and swaps
// of two neighbours), if it is near enough to be a typo of it: at most a third of the word's
// length, and at most 2. "" when none is.
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

// "; did you mean 'NEAREST'?" for a message about `word`, or "" when nothing is near.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace baton::cli
