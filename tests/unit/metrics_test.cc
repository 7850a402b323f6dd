// Unit tests of the Prometheus text and the /metrics request handling (no sockets).
#include "supervisor/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace baton {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

class QuietOs : public SupervisorOs {
 public:
  TimePoint now() override { return clock; }
  Result<int> spawn(int id) override { return 1000 + id; }
  void signal(const Generation&, int) override {}
  void signal_group(const Generation&, int) override {}
  void kill_group(const Generation&) override {}
  std::string output_tail(int) override { return {}; }
  void reply(WaiterId, const ReloadOutcome&) override {}
  void log(LogLevel, const std::string&) override {}
  void finished(int) override {}
  TimePoint clock{};
};

TEST(Metrics, CountsReloadsGenerationsAndDurations) {
  QuietOs os;
  SupervisorCore core(os, CoreOptions{});
  core.start();
  os.clock += 300ms;
  core.on_ready(1);
  core.on_reload(std::nullopt);
  os.clock += 2s;
  core.on_ready(2);
  std::string text = render_metrics(core, "1.2.3", {}, {});
  EXPECT_THAT(text, HasSubstr("# TYPE baton_reloads_total counter\n"));
  EXPECT_THAT(text, HasSubstr("baton_reloads_total{result=\"ok\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("baton_serving_generation 2\n"));
  EXPECT_THAT(text, HasSubstr("baton_generations{state=\"draining\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("# TYPE baton_build_info gauge\nbaton_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("up_seconds")));  // a start time, not an uptime
  // Readiness took 0.3s and 2s: cumulative buckets.
  EXPECT_THAT(text, HasSubstr("baton_ready_seconds_bucket{le=\"0.25\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("baton_ready_seconds_bucket{le=\"0.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("baton_ready_seconds_bucket{le=\"2.5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("baton_ready_seconds_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("baton_ready_seconds_sum 2.3\n"));

  core.on_exit(1001, 0);  // the old one drained: the reload is over
  text = render_metrics(core, "1.2.3", {}, {});
  EXPECT_THAT(text, HasSubstr("baton_reloads_total{result=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("baton_reload_seconds_count 1\n"));
}

TEST(Metrics, ShowsListenersAndEachLiveGenerationsTraffic) {
  QuietOs os;
  SupervisorCore core(os, CoreOptions{});
  core.start();
  core.on_ready(1);
  core.on_reload(std::nullopt);  // generation 2 starts; generation 1 serves
  SupervisorFacts facts;
  facts.listeners = {{"web", "127.0.0.1:8080", 3, true, 2},
                     {"admin", "unix:/run/a \"b\"\\c", 4, false}};
  facts.traffic[1] = {100, 3u, size_t{7}};
  facts.traffic[2] = {0, std::nullopt, std::nullopt};  // not looked at: no series, not 0
  std::string text = render_metrics(core, "1.2.3", {}, facts);
  EXPECT_THAT(text, HasSubstr("# TYPE baton_listener_info gauge\n"));
  EXPECT_THAT(text, HasSubstr("baton_listener_info{listener=\"web\",address=\"127.0.0.1:8080\","
                              "mode=\"steered\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("baton_listener_info{listener=\"admin\",address=\"unix:/run/a "
                              "\\\"b\\\"\\\\c\",mode=\"shared\"} 1\n"));
  // A stranger in a group is counted per steered listener; a shared one has no group.
  EXPECT_THAT(text, HasSubstr("baton_listener_foreign_members_total{listener=\"web\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("baton_listener_foreign_members_total{listener=\"admin\"")));
  EXPECT_THAT(text, HasSubstr("# TYPE baton_generation_share_ratio gauge\n"));
  EXPECT_THAT(text,
              HasSubstr("baton_generation_share_ratio{generation=\"1\",state=\"serving\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("baton_generation_share_ratio{generation=\"2\",state=\"starting\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("baton_generation_accept_queue{generation=\"1\",state=\"serving\"} 3\n"));
  EXPECT_THAT(text,
              HasSubstr("baton_generation_connections{generation=\"1\",state=\"serving\"} 7\n"));
  EXPECT_THAT(text, Not(HasSubstr("baton_generation_accept_queue{generation=\"2\"")));
  EXPECT_THAT(text, Not(HasSubstr("baton_generation_connections{generation=\"2\"")));

  // Generation 2 serves, 1 drains then exits: an exited generation's series are gone.
  core.on_ready(2);
  facts.traffic[2] = {100, 0u, size_t{0}};
  core.on_exit(1001, 0);
  text = render_metrics(core, "1.2.3", {}, facts);
  EXPECT_THAT(text, Not(HasSubstr("generation=\"1\"")));
  EXPECT_THAT(text,
              HasSubstr("baton_generation_share_ratio{generation=\"2\",state=\"serving\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("baton_generations{state=\"held\"} 0\n"));
}

TEST(Metrics, ShowsTheProcessFamiliesByTheConventions) {
  QuietOs os;
  SupervisorCore core(os, CoreOptions{});
  core.start();
  ProcessStats process;
  process.start_time_seconds = 1764196860.25;
  process.cpu_seconds = 1.5;
  process.resident_bytes = 4096 * 1000;
  process.open_fds = 12;
  std::string text = render_metrics(core, "1.2.3", process, {});
  EXPECT_THAT(text, HasSubstr("# TYPE process_start_time_seconds gauge\n"
                              "process_start_time_seconds 1764196860.25\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"
                              "process_cpu_seconds_total 1.5\n"));
  EXPECT_THAT(text, HasSubstr("process_resident_memory_bytes 4096000\n"));
  EXPECT_THAT(text, HasSubstr("process_open_fds 12\n"));

  // A figure that could not be read has its family's HELP and TYPE but no sample, never a 0.
  text = render_metrics(core, "1.2.3", {}, {});
  EXPECT_THAT(text, HasSubstr("# TYPE process_open_fds gauge\n"));
  EXPECT_THAT(text, Not(HasSubstr("process_open_fds 0")));
}

TEST(Metrics, ParsesProcSelfStat) {
  // A command name with a space and a ')' in it, as a process may name itself.
  const std::string stat =
      "4242 (ba) ton) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 1 0 360000 "
      "12345678 2500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  ProcessStats s = parse_proc_stat(stat, 1764190000, 100, 4096);
  ASSERT_TRUE(s.cpu_seconds.has_value());
  EXPECT_DOUBLE_EQ(*s.cpu_seconds, 2.0);  // (150 + 50) ticks at 100 a second
  ASSERT_TRUE(s.start_time_seconds.has_value());
  EXPECT_DOUBLE_EQ(*s.start_time_seconds, 1764190000.0 + 3600.0);
  ASSERT_TRUE(s.resident_bytes.has_value());
  EXPECT_EQ(*s.resident_bytes, 2500u * 4096u);

  // Without the boot time there is no start time; text cut short gives what it holds.
  s = parse_proc_stat(stat, std::nullopt, 100, 4096);
  EXPECT_FALSE(s.start_time_seconds.has_value());
  s = parse_proc_stat("4242 (baton) S 1 4242 4242 0 -1 4194560 500 0 0 0 150", 1, 100, 4096);
  EXPECT_FALSE(s.cpu_seconds.has_value());
  EXPECT_FALSE(s.resident_bytes.has_value());
  EXPECT_FALSE(parse_proc_stat("garbage", 1, 100, 4096).cpu_seconds.has_value());
  EXPECT_FALSE(parse_proc_stat("1 (x) S -5 z", 1, 100, 4096).cpu_seconds.has_value());
}

TEST(Metrics, ReadsItsOwnProcess) {
  ProcessStats s = read_process_stats();
  ASSERT_TRUE(s.start_time_seconds.has_value());
  ASSERT_TRUE(s.cpu_seconds.has_value());
  ASSERT_TRUE(s.resident_bytes.has_value());
  ASSERT_TRUE(s.open_fds.has_value());
  EXPECT_GT(*s.resident_bytes, 0u);
  EXPECT_GE(*s.open_fds, 3u);  // stdin, stdout, stderr at least
  // Started before now, and after the epoch's 2020s began.
  EXPECT_LT(*s.start_time_seconds, static_cast<double>(::time(nullptr)) + 1);
  EXPECT_GT(*s.start_time_seconds, 1.6e9);
}

TEST(Metrics, AnswersOnlyGetMetrics) {
  auto body = [] { return std::string("x 1\n"); };
  std::string ok = metrics_response("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", body);
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(ok, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(ok, HasSubstr("Content-Length: 4\r\n"));
  EXPECT_THAT(ok, ::testing::EndsWith("\r\n\r\nx 1\n"));
  EXPECT_THAT(metrics_response("GET /metrics?x=1 HTTP/1.0\r\n\r\n", body),
              StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(metrics_response("GET / HTTP/1.1\r\n\r\n", body), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(metrics_response("POST /metrics HTTP/1.1\r\n\r\n", body), StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(metrics_response("hello\r\n\r\n", body), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(metrics_response("GET /metrics SPDY\r\n\r\n", body), StartsWith("HTTP/1.1 400"));
}

}  // namespace
}  // namespace baton
