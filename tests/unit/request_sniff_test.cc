// What a taken-over connection's client sends, told from the bytes (request_sniff.h).
#include "supervisor/request_sniff.h"

#include <gtest/gtest.h>

#include <string>

namespace baton {
namespace {

TEST(RequestSniff, PlaintextHttp1RequestLinesAreRecognised) {
  EXPECT_EQ(sniff_request("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Sniffed::kHttp1);
  EXPECT_EQ(sniff_request("POST /api/v1/items?id=3 HTTP/1.1\r\n"), Sniffed::kHttp1);
  EXPECT_EQ(sniff_request("OPTIONS * HTTP/1.0\n"), Sniffed::kHttp1);
  EXPECT_EQ(sniff_request("M-SEARCH http://h/x HTTP/1.1\r\n"), Sniffed::kHttp1);
}

TEST(RequestSniff, EveryPrefixOfARequestLineWaitsForMore) {
  const std::string line = "PUT /upload HTTP/1.1\r\n";
  for (size_t n = 0; n < line.size(); ++n) {
    EXPECT_EQ(sniff_request(line.substr(0, n)), Sniffed::kNeedMore) << "first " << n << " bytes";
  }
  EXPECT_EQ(sniff_request(line), Sniffed::kHttp1);
}

TEST(RequestSniff, OtherProtocolsAreNeverRelayed) {
  const std::string tls_hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  EXPECT_EQ(sniff_request(tls_hello), Sniffed::kOther);
  EXPECT_EQ(sniff_request("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Sniffed::kOther);
  EXPECT_EQ(sniff_request("SSH-2.0-OpenSSH_9.2\r\n"), Sniffed::kOther);
  EXPECT_EQ(sniff_request("GET /  HTTP/1.1\r\n"), Sniffed::kOther) << "two spaces";
  EXPECT_EQ(sniff_request(" GET / HTTP/1.1\r\n"), Sniffed::kOther);
  EXPECT_EQ(sniff_request("GET / HTTP/1.x\r\n"), Sniffed::kOther);
  EXPECT_EQ(sniff_request("GET / HTTP/1.1\rX"), Sniffed::kOther);
  EXPECT_EQ(sniff_request("GET / http/1.1\r\n"), Sniffed::kOther);
  EXPECT_EQ(sniff_request(std::string("GET /\0 HTTP/1.1\r\n", 17)), Sniffed::kOther);
}

TEST(RequestSniff, NothingUnboundedIsWaitedFor) {
  EXPECT_EQ(sniff_request(std::string(40, 'A')), Sniffed::kOther) << "a method of 40 letters";
  const std::string long_target = "GET /" + std::string(kSniffLimit, 'a');
  EXPECT_EQ(sniff_request(long_target), Sniffed::kOther) << "a line longer than the limit";
  EXPECT_EQ(sniff_request(long_target.substr(0, kSniffLimit - 1)), Sniffed::kNeedMore);
}

TEST(RequestSniff, TlsRecordsAreToldFromOtherBytes) {
  using namespace std::string_view_literals;
  EXPECT_TRUE(is_tls_record("\x16\x03\x01\x00\xa5"sv));  // a ClientHello
  EXPECT_TRUE(is_tls_record("\x17\x03\x03"sv));          // application data
  EXPECT_TRUE(is_tls_record("\x15\x03"sv));              // an alert
  EXPECT_FALSE(is_tls_record("\x16"sv));                 // too short to tell
  EXPECT_FALSE(is_tls_record("\x16\x02\x00"sv));         // not version 3
  EXPECT_FALSE(is_tls_record("\x14\x03\x03"sv));         // change_cipher_spec alone
  EXPECT_FALSE(is_tls_record("GET / HTTP/1.1\r\n"sv));
  EXPECT_FALSE(is_tls_record("PRI * HTTP/2.0\r\n"sv));
}

}  // namespace
}  // namespace baton
