// One duration syntax for every flag: parse_duration and its printers.
#include "common/duration.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

using std::chrono::milliseconds;

TEST(Duration, ParsesUnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration("10")->count(), 10'000'000'000);
  EXPECT_EQ(parse_duration("30s")->count(), 30'000'000'000);
  EXPECT_EQ(parse_duration("500ms")->count(), 500'000'000);
  EXPECT_EQ(parse_duration("250us")->count(), 250'000);
  EXPECT_EQ(parse_duration("1.5s")->count(), 1'500'000'000);
  EXPECT_EQ(parse_duration("2m")->count(), 120'000'000'000);
  EXPECT_EQ(parse_duration("2min")->count(), 120'000'000'000);
  EXPECT_EQ(parse_duration("1h")->count(), 3'600'000'000'000);
  EXPECT_EQ(parse_duration("0s", true)->count(), 0);
}

TEST(Duration, RejectsWhatIsNotADuration) {
  for (const char* bad : {"", "s", "0", "-1s", "1.s", ".5s", "1..2s", "10 s", "10x", "1e3", "1d",
                          "99999999999999999999h"}) {
    auto d = parse_duration(bad);
    EXPECT_FALSE(d.ok()) << bad;
  }
  auto d = parse_duration("10x");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().what(),
            "bad duration '10x': expected e.g. 30s, 500ms, 2m, 1h or plain seconds");
}

TEST(Duration, MillisecondsRoundUpTinyValuesInsteadOfZero) {
  EXPECT_EQ(parse_duration_ms("30s").value(), milliseconds(30'000));
  EXPECT_EQ(parse_duration_ms("100us").value(), milliseconds(1));
  EXPECT_EQ(parse_duration_ms("0", true).value(), milliseconds(0));
  EXPECT_FALSE(parse_duration_ms("0").ok());
}

TEST(Duration, FormatsForPeopleInTwoUnits) {
  EXPECT_EQ(format_duration(milliseconds(2'500)), "2.5s");
  EXPECT_EQ(format_duration(milliseconds(45'000)), "45s");
  EXPECT_EQ(format_duration(milliseconds(252'000)), "4m 12s");
  EXPECT_EQ(format_duration(milliseconds(3 * 3'600'000 + 5 * 60'000)), "3h 05m");
  EXPECT_EQ(format_duration(milliseconds(2 * 86'400'000 + 4 * 3'600'000 + 59'000)), "2d 04h");
  EXPECT_EQ(format_duration(milliseconds(-5)), "0.0s");
}

TEST(Duration, PrintsWhatItParsesBack) {
  for (int64_t ms : {0, 1, 500, 1'000, 30'000, 90'000, 120'000, 3'600'000, 5'400'000}) {
    std::string text = duration_to_string(milliseconds(ms));
    auto back = parse_duration_ms(text, true);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(back->count(), ms) << text;
  }
  EXPECT_EQ(duration_to_string(milliseconds(30'000)), "30s");
  EXPECT_EQ(duration_to_string(milliseconds(120'000)), "2m");
}

}  // namespace
}  // namespace baton
