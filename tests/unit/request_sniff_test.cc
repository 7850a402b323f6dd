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

TEST(WithConnectionClose, AsksTheServerToCloseAfterItsResponse) {
  EXPECT_EQ(with_connection_close("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            "GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\r\n");
  // What follows the head (a body, a pipelined request) is passed as it is.
  EXPECT_EQ(with_connection_close("POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
            "POST /p HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi");
  // The client's own Connection lines go: some servers heed the first, some the last.
  EXPECT_EQ(with_connection_close("GET / HTTP/1.1\r\nconnection: Keep-Alive\r\nHost: a\r\n"
                                  "CONNECTION: keep-alive\r\n\r\n"),
            "GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\r\n");
  EXPECT_EQ(with_connection_close("GET / HTTP/1.0\n\n"), "GET / HTTP/1.0\nConnection: close\n\n");
  // A header named like it is another header.
  EXPECT_EQ(with_connection_close("GET / HTTP/1.1\r\nConnections: 2\r\n\r\n"),
            "GET / HTTP/1.1\r\nConnection: close\r\nConnections: 2\r\n\r\n");
}

TEST(WithConnectionClose, LeavesWhatItCannotVouchForAsItIs) {
  using namespace std::string_view_literals;
  EXPECT_EQ(with_connection_close("GET / HTTP/1.1\r\nHost: a\r\n"), "");  // head not all here
  EXPECT_EQ(with_connection_close("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n\r\n"),
            "");
  EXPECT_EQ(with_connection_close("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n"), "");
  EXPECT_EQ(with_connection_close("\x16\x03\x01\x00\xa5"sv), "");
  EXPECT_EQ(with_connection_close(""), "");
  EXPECT_EQ(with_connection_close(std::string(kSniffLimit * 2, 'G')), "");
}

TEST(ResponseWithConnectionClose, SaysCloseInTheFinalResponsesHead) {
  auto r = response_with_connection_close("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi");
  // The server's own Connection lines go.
  r = response_with_connection_close("HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\n");
  EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
  // Interim responses pass as they are; the final one is rewritten.
  r = response_with_connection_close("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.out,
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(response_with_connection_close("HTTP/1.0 404 Not Found\n\nbody").out,
            "HTTP/1.0 404 Not Found\nConnection: close\n\nbody");
}

TEST(ResponseWithConnectionClose, WaitsForTheWholeHeadThenGivesUpOnWhatItCannotRead) {
  EXPECT_FALSE(response_with_connection_close("HTTP/1.1 200 OK\r\nContent-Le").done);
  EXPECT_FALSE(response_with_connection_close("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2").done);
  for (std::string bytes :
       {std::string("SSH-2.0-x\r\n\r\n"), std::string("HTTP/1.1 101 Switching\r\n\r\n"),
        "HTTP/1.1 200 OK\r\n" + std::string(kSniffLimit + 1, 'x')}) {
    auto r = response_with_connection_close(bytes);
    EXPECT_TRUE(r.done) << bytes.substr(0, 20);
    EXPECT_EQ(r.out, bytes);
  }
}

}  // namespace
}  // namespace baton
