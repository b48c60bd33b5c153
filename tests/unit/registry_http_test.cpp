// The registry client's pure parts: origins (what an Authorization header may be sent to),
// which registries may be reached insecurely, what a registry's error body says, and what a
// token must look like before it goes into a header.
#include <gtest/gtest.h>

#include <hutch/registry.hpp>

namespace registry = hutch::registry;
using registry::detail::origin_of;

TEST(RegistryHttp, AnOriginIsSchemeHostAndPortWithTheDefaultPortFilledIn) {
  EXPECT_EQ(origin_of("https://Quay.IO/v2/"), "https://quay.io:443");
  EXPECT_EQ(origin_of("http://127.0.0.1:5000/v2/x/blobs/sha256:00"), "http://127.0.0.1:5000");
  EXPECT_EQ(origin_of("https://[::1]:8443/token?x=1"), "https://[::1]:8443");
  EXPECT_EQ(origin_of("HTTP://host/"), "http://host:80");
  // Only http and https: anything else has no origin, so nothing is sent to it.
  EXPECT_EQ(origin_of("file:///etc/passwd"), "");
  EXPECT_EQ(origin_of("ftp://host/"), "");
  EXPECT_EQ(origin_of("/relative/path"), "");
  EXPECT_EQ(origin_of(""), "");
  // Same host, other port or scheme: another origin.
  EXPECT_NE(origin_of("https://r.example/"), origin_of("http://r.example/"));
  EXPECT_NE(origin_of("https://r.example/"), origin_of("https://r.example:444/"));
  EXPECT_EQ(registry::detail::host_of("https://[::1]:8443/"), "[::1]");
}

TEST(RegistryHttp, PlainHttpOnlyForLoopbackNamedRegistriesOrWithVerificationOff) {
  registry::Transport t;
  t.insecure = {"Registry.Local:5000", "lab.example"};
  registry::detail::Http http(t);
  EXPECT_TRUE(http.insecure_allowed("http://127.0.0.1:5000/v2/"));
  EXPECT_TRUE(http.insecure_allowed("http://127.1.2.3/v2/"));
  EXPECT_TRUE(http.insecure_allowed("http://localhost:5000/v2/"));
  EXPECT_TRUE(http.insecure_allowed("http://[::1]:5000/v2/"));
  EXPECT_TRUE(http.insecure_allowed("http://registry.local:5000/v2/"));
  EXPECT_TRUE(http.insecure_allowed("https://lab.example:8443/v2/"));  // a host: every port
  EXPECT_FALSE(http.insecure_allowed("http://registry.local:5001/v2/"));
  EXPECT_FALSE(http.insecure_allowed("http://quay.io/v2/"));
  EXPECT_FALSE(http.insecure_allowed("http://127.0.0.1.evil.example/v2/"));
  EXPECT_FALSE(http.insecure_allowed("http://localhost.evil.example/v2/"));
  t.tls_verify = false;
  registry::detail::Http unverified(t);
  EXPECT_TRUE(unverified.insecure_allowed("http://quay.io/v2/"));
}

TEST(RegistryHttp, ARegistrysErrorsAreReadAsCodeAndMessageMadePrintable) {
  using registry::detail::registry_errors;
  EXPECT_EQ(registry_errors(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown",
            "detail":{"Tag":"x"}}]})"),
            "MANIFEST_UNKNOWN: manifest unknown");
  EXPECT_EQ(registry_errors(R"({"errors":[{"code":"A"},{"code":"B","message":"two"}]})"),
            "A; B: two");
  EXPECT_EQ(registry_errors(R"({"errors":[{"code":"X","message":"line\nbreak\u001b[2J"}]})"),
            "X: line?break?[2J");
  EXPECT_EQ(registry_errors("<html>502 Bad Gateway</html>"), "");
  EXPECT_EQ(registry_errors(R"({"errors":"no"})"), "");
  EXPECT_EQ(registry_errors(""), "");
}

TEST(RegistryHttp, OnlyAHeaderSafeTokenIsSent) {
  using registry::detail::header_safe;
  EXPECT_TRUE(header_safe("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"));
  EXPECT_FALSE(header_safe(""));
  EXPECT_FALSE(header_safe("abc\r\nX-Injected: 1"));
  EXPECT_FALSE(header_safe("with space"));
  EXPECT_FALSE(header_safe(std::string(20000, 'a')));
}

TEST(RegistryHttp, Base64EncodesWhatItDecodes) {
  using registry::detail::base64_decode;
  using registry::detail::base64_encode;
  EXPECT_EQ(base64_encode("alice:s3cret"), "YWxpY2U6czNjcmV0");
  EXPECT_EQ(base64_encode("a"), "YQ==");
  EXPECT_EQ(base64_encode("ab"), "YWI=");
  EXPECT_EQ(base64_encode(""), "");
  for (std::string s : {"", "x", "xy", "xyz", "\xff\x00\x01pass:w"}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
}

TEST(RegistryHttp, QueryValuesAreEscaped) {
  EXPECT_EQ(registry::detail::escape("repository:library/busybox:pull"),
            "repository%3Alibrary%2Fbusybox%3Apull");
  EXPECT_EQ(registry::detail::escape("a b&c=d"), "a%20b%26c%3Dd");
}
