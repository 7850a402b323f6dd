// Unit tests of the command line's text helpers: "did you mean" and --help's wrapping.
#include <gtest/gtest.h>

#include "cli/help_format.h"
#include "cli/suggest.h"

namespace baton::cli {
namespace {

const std::vector<std::string> kKeys = {"listen",        "ready", "ready-timeout", "drain",
                                        "drain-timeout", "env",   "env-file"};

TEST(Suggest, NamesTheKeyATypoMeant) {
  EXPECT_EQ(nearest("lsten", kKeys), "listen");
  EXPECT_EQ(nearest("drain-timout", kKeys), "drain-timeout");
  EXPECT_EQ(nearest("raedy", kKeys), "ready");  // two letters swapped
  EXPECT_EQ(nearest("envfile", kKeys), "env-file");
  EXPECT_EQ(did_you_mean("redy", kKeys), "; did you mean 'ready'?");
}

TEST(Suggest, NamesNothingForAWordThatIsNoTypo) {
  EXPECT_EQ(nearest("colour", kKeys), "");
  EXPECT_EQ(nearest("x", kKeys), "");
  EXPECT_EQ(nearest("", kKeys), "");
  EXPECT_EQ(nearest(std::string(10000, 'a'), kKeys), "") << "bounded before any work";
  EXPECT_EQ(did_you_mean("colour", kKeys), "");
}

TEST(HelpFormat, WrapsAtSpacesWithinTheWidthAndKeepsNewlines) {
  const std::string text =
      "how long an old generation has to finish, counted from the switch (watch and drain "
      "signal together),\nthen its process group is killed";
  const std::string wrapped = wrap_text(text, 30);
  size_t start = 0;
  while (start < wrapped.size()) {
    const size_t end = std::min(wrapped.find('\n', start), wrapped.size());
    EXPECT_LE(end - start, 30u) << wrapped.substr(start, end - start);
    start = end + 1;
  }
  EXPECT_NE(wrapped.find("together),\nthen"), std::string::npos) << "a newline of its own stays";
  std::string words;
  for (char c : wrapped) words += c == '\n' ? ' ' : c;
  std::string original;
  for (char c : text) original += c == '\n' ? ' ' : c;
  EXPECT_EQ(words, original) << "no word lost or split";
  EXPECT_EQ(wrap_text("a-word-longer-than-the-width x", 10), "a-word-longer-than-the-width\nx");
}

}  // namespace
}  // namespace baton::cli
