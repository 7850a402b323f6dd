// Unit tests of soak's pure parsing: URLs, durations, HTTP responses, outcome classification.
#include <cerrno>
#include <string>

#include <gtest/gtest.h>

#include "soak/http_parser.h"
#include "soak/outcome.h"
#include "soak/url.h"

namespace baton::soak {
namespace {

using State = ResponseParser::State;

TEST(SoakUrl, SplitsHostPortAndTarget) {
  auto u = parse_url("http://127.0.0.1:8080/a/b?x=1");
  ASSERT_TRUE(u.ok()) << u.error().what();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/a/b?x=1");
  EXPECT_EQ(u->authority(), "127.0.0.1:8080");
  EXPECT_EQ(u->host_header(), "127.0.0.1:8080");
}

TEST(SoakUrl, MissingPortIs80AndMissingPathIsSlash) {
  auto u = parse_url("http://example.test");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header(), "example.test");
  auto q = parse_url("http://h:81?x#frag");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->target, "/?x");
}

TEST(SoakUrl, BracketedIpv6LiteralKeepsItsBracketsInTheHostHeader) {
  auto u = parse_url("http://[::1]:9000/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->authority(), "[::1]:9000");
  EXPECT_EQ(u->host_header(), "[::1]:9000");
}

TEST(SoakUrl, MalformedOrHttpsUrlsAreRejectedWithTheReason) {
  for (const char* bad : {"", "127.0.0.1:80", "ftp://x/", "http://", "http://:80/", "http://h:0/",
                          "http://h:70000/", "http://h:/", "http://h:8x/", "http://[::1/",
                          "http://u@h/", "http://h/a b", "http://h^/"}) {
    auto u = parse_url(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_NE(u.error().what().find("bad URL"), std::string::npos);
    }
  }
  // Found by fuzz/url_fuzz.cc: a bracketed host went into the Host header unchecked.
  for (const char* bad : {"http://[::1\r\nX-Injected: 1]:80/", "http://[::_]/", "http://[x]/"}) {
    auto u = parse_url(bad);
    EXPECT_FALSE(u.ok()) << bad;
  }
  using namespace std::string_view_literals;
  EXPECT_FALSE(parse_url("http://[::\0\r\nX: 1]/"sv).ok());  // inet_pton would stop at the NUL
  auto https = parse_url("https://x/");
  ASSERT_FALSE(https.ok());
  EXPECT_NE(https.error().what().find("https is not supported"), std::string::npos);
}

TEST(SoakUrl, RequestCarriesHostExtraHeadersAndCloseWhenAsked) {
  auto u = parse_url("http://h:81/p");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(build_request(*u, false, {}),
            "GET /p HTTP/1.1\r\nHost: h:81\r\nUser-Agent: baton-soak\r\n\r\n");
  EXPECT_EQ(build_request(*u, true, {"X-A: 1"}),
            "GET /p HTTP/1.1\r\nHost: h:81\r\nUser-Agent: baton-soak\r\nX-A: 1\r\n"
            "Connection: close\r\n\r\n");
}

TEST(SoakDuration, AcceptsMsSecondsMinutesHoursAndPlainSecondsRejectsTheRest) {
  EXPECT_EQ(parse_duration("10")->count(), 10'000'000'000);
  EXPECT_EQ(parse_duration("10s")->count(), 10'000'000'000);
  EXPECT_EQ(parse_duration("250ms")->count(), 250'000'000);
  EXPECT_EQ(parse_duration("1.5s")->count(), 1'500'000'000);
  EXPECT_EQ(parse_duration("2m")->count(), 120'000'000'000);
  EXPECT_EQ(parse_duration("1h")->count(), 3'600'000'000'000);
  EXPECT_EQ(parse_duration("0s", true)->count(), 0);
  for (const char* bad : {"", "s", "0", "-1s", "1.s", "1..2s", "10 s", "10x", "1e3"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
}

// Feeds `text` to a fresh parser in pieces of `step` bytes; returns the final state.
State feed_in_pieces(ResponseParser& p, const std::string& text, size_t step, size_t* total_used) {
  p.reset();
  *total_used = 0;
  State st = State::kNeedMore;
  for (size_t i = 0; i < text.size() && st == State::kNeedMore; i += step) {
    size_t used = 0;
    st = p.feed(text.data() + i, std::min(step, text.size() - i), &used);
    *total_used += used;
  }
  return st;
}

TEST(SoakParser, ContentLengthBodyCompletesHoweverTheBytesArrive) {
  std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Pid: 42\r\n\r\nhello";
  for (size_t step : {1, 2, 3, 7, 1000}) {
    ResponseParser p;
    p.capture_header("x-pid");
    size_t used = 0;
    EXPECT_EQ(feed_in_pieces(p, r + "EXTRA", step, &used), State::kComplete) << step;
    EXPECT_EQ(used, r.size()) << step;
    EXPECT_EQ(p.status(), 200);
    EXPECT_TRUE(p.keep_alive());
    EXPECT_EQ(p.body_bytes(), 5u);
    EXPECT_EQ(p.captured(), "42");
  }
}

TEST(SoakParser, ChunkedBodyWithExtensionsAndTrailersCompletes) {
  std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n";
  for (size_t step : {1, 4, 1000}) {
    ResponseParser p;
    size_t used = 0;
    EXPECT_EQ(feed_in_pieces(p, r, step, &used), State::kComplete) << step;
    EXPECT_EQ(used, r.size());
    EXPECT_EQ(p.body_bytes(), 31u);
  }
}

TEST(SoakParser, BadChunkSizeOrChunkLongerThanItsSizeIsAnError) {
  ResponseParser p;
  size_t used = 0;
  EXPECT_EQ(
      feed_in_pieces(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100, &used),
      State::kError);
  EXPECT_EQ(feed_in_pieces(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
                           100, &used),
            State::kError);
}

TEST(SoakParser, CloseDelimitedBodyEndsAtEof) {
  ResponseParser p;
  size_t used = 0;
  EXPECT_EQ(feed_in_pieces(p, "HTTP/1.0 200 OK\r\n\r\nbody", 3, &used), State::kNeedMore);
  EXPECT_EQ(p.finish_eof(), State::kComplete);
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.body_bytes(), 4u);
}

TEST(SoakParser, KeepAliveFollowsTheVersionAndConnectionHeader) {
  struct Case {
    const char* head;
    bool keep;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
  };
  for (const auto& c : cases) {
    ResponseParser p;
    size_t used = 0;
    ASSERT_EQ(feed_in_pieces(p, c.head, 1000, &used), State::kComplete) << c.head;
    EXPECT_EQ(p.keep_alive(), c.keep) << c.head;
  }
}

TEST(SoakParser, NoContentHasNoBodyAndInterimResponsesAreSkipped) {
  ResponseParser p;
  size_t used = 0;
  EXPECT_EQ(feed_in_pieces(p, "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 5, &used),
            State::kComplete);
  EXPECT_EQ(p.status(), 204);
  std::string r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nno";
  EXPECT_EQ(feed_in_pieces(p, r, 1, &used), State::kComplete);
  EXPECT_EQ(p.status(), 503);
  EXPECT_EQ(used, r.size());
}

TEST(SoakParser, MalformedStatusLineOrHeadersAreAnError) {
  for (const char* bad : {"HTTP/2 200 OK\r\n\r\n", "garbage\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"}) {
    ResponseParser p;
    size_t used = 0;
    EXPECT_EQ(feed_in_pieces(p, bad, 1000, &used), State::kError) << bad;
    EXPECT_FALSE(p.error().empty());
  }
}

TEST(SoakParser, HeadOverTheSizeLimitIsAnError) {
  ResponseParser p;
  std::string r = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 2000; ++i) r += "X-Filler: 0123456789012345678901234567890123456789\r\n";
  size_t used = 0;
  EXPECT_EQ(feed_in_pieces(p, r, 4096, &used), State::kError);
  std::string long_line = "HTTP/1.1 200 OK\r\nX: " + std::string(10000, 'a');
  EXPECT_EQ(feed_in_pieces(p, long_line, 512, &used), State::kError);
}

TEST(SoakParser, EofBeforeOrInsideAResponseIsAnErrorCountingItsBytes) {
  ResponseParser p;
  p.reset();
  EXPECT_EQ(p.finish_eof(), State::kError);
  EXPECT_EQ(p.bytes(), 0u);
  size_t used = 0;
  EXPECT_EQ(feed_in_pieces(p, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 100, &used),
            State::kNeedMore);
  EXPECT_EQ(p.finish_eof(), State::kError);
  EXPECT_GT(p.bytes(), 0u);
}

TEST(SoakOutcome, OnlyAReusedConnectionDyingBeforeAnyByteIsRetryable) {
  EXPECT_EQ(classify_connect_error(ECONNREFUSED).kind, Kind::kRefused);
  EXPECT_EQ(classify_connect_error(ETIMEDOUT).kind, Kind::kConnectTimeout);
  EXPECT_EQ(classify_connect_error(EADDRNOTAVAIL).kind, Kind::kOther);
  EXPECT_EQ(classify_connect_error(EADDRNOTAVAIL).detail, EADDRNOTAVAIL);
  // A reused connection that dies before any response byte: retryable.
  EXPECT_EQ(classify_io_error(ECONNRESET, 0, true).kind, Kind::kKeepaliveClosed);
  EXPECT_EQ(classify_io_error(EPIPE, 0, true).kind, Kind::kKeepaliveClosed);
  EXPECT_TRUE(classify_io_error(EPIPE, 0, true).retryable());
  // Fresh connection, or part of the response already there: not retryable.
  EXPECT_EQ(classify_io_error(ECONNRESET, 0, false).kind, Kind::kReset);
  EXPECT_EQ(classify_io_error(ECONNRESET, 10, true).kind, Kind::kReset);
  EXPECT_FALSE(classify_io_error(ECONNRESET, 10, true).retryable());
  EXPECT_EQ(classify_eof(0, true).kind, Kind::kKeepaliveClosed);
  EXPECT_EQ(classify_eof(0, false).kind, Kind::kClosed);
  EXPECT_EQ(classify_eof(5, true).kind, Kind::kClosed);
  EXPECT_EQ(classify_status(200).kind, Kind::kOk);
  EXPECT_EQ(classify_status(299).kind, Kind::kOk);
  EXPECT_EQ(classify_status(503).kind, Kind::kHttpStatus);
  EXPECT_EQ(classify_status(503).detail, 503);
  EXPECT_EQ(classify_status(301).kind, Kind::kHttpStatus);
  for (size_t k = 0; k < kKindCount; ++k) {
    EXPECT_NE(kind_name(static_cast<Kind>(k)), "?");
    EXPECT_NE(kind_label(static_cast<Kind>(k)), "?");
  }
}

}  // namespace
}  // namespace baton::soak
