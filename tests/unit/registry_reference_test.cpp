// hutch::registry's image references: docker's normalization and the distribution grammar.
#include <gtest/gtest.h>

#include <string>

#include <hutch/registry/reference.hpp>

namespace {

namespace registry = hutch::registry;

const std::string digest = "sha256:" + std::string(64, 'a');

TEST(RegistryReference, ReferencesAreNormalizedAsDockerDoes) {
  struct Case {
    const char* text;
    const char* full;
    const char* endpoint;
  } cases[] = {
      {"busybox", "docker.io/library/busybox:latest", "registry-1.docker.io"},
      {"library/busybox:1.36", "docker.io/library/busybox:1.36", "registry-1.docker.io"},
      {"docker.io/busybox", "docker.io/library/busybox:latest", "registry-1.docker.io"},
      {"index.docker.io/team/app", "docker.io/team/app:latest", "registry-1.docker.io"},
      {"team/app:v2.0-rc_1", "docker.io/team/app:v2.0-rc_1", "registry-1.docker.io"},
      {"quay.io/a/b/c:t", "quay.io/a/b/c:t", "quay.io"},
      {"127.0.0.1:5000/library/busybox:v1", "127.0.0.1:5000/library/busybox:v1", "127.0.0.1:5000"},
      {"localhost/app", "localhost/app:latest", "localhost"},
      {"[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000"},
      {"Registry/app", "Registry/app:latest", "Registry"},  // upper case: a host, as for docker
      {"my-registry.example.com:443/a.b/c__d/e---f",
       "my-registry.example.com:443/a.b/c__d/e---f:latest", "my-registry.example.com:443"},
  };
  for (const auto& c : cases) {
    auto r = registry::parse_reference(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error().message();
    EXPECT_EQ(r->str(), c.full) << c.text;
    EXPECT_EQ(r->endpoint(), c.endpoint) << c.text;
    auto again = registry::parse_reference(r->str());
    ASSERT_TRUE(again) << r->str();
    EXPECT_EQ(*again, *r) << c.text;
  }
}

TEST(RegistryReference, ADigestPinsTheManifestAndNeedsNoTag) {
  auto pinned = registry::parse_reference("localhost:5000/app@" + digest);
  ASSERT_TRUE(pinned) << pinned.error().message();
  EXPECT_EQ(pinned->tag, "");
  EXPECT_EQ(pinned->digest, digest);
  EXPECT_EQ(pinned->manifest_ref(), digest);
  EXPECT_EQ(pinned->str(), "localhost:5000/app@" + digest);
  auto both = registry::parse_reference("busybox:1.36@" + digest);
  ASSERT_TRUE(both) << both.error().message();
  EXPECT_EQ(both->tag, "1.36");
  EXPECT_EQ(both->manifest_ref(), digest);
  auto tagged = registry::parse_reference("busybox:1.36");
  ASSERT_TRUE(tagged);
  EXPECT_EQ(tagged->manifest_ref(), "1.36");
}

TEST(RegistryReference, LoopbackRegistriesAreKnown) {
  for (const char* local : {"localhost:5000/a", "127.0.0.1:5000/a", "127.1.2.3/a", "[::1]:80/a"}) {
    auto r = registry::parse_reference(local);
    ASSERT_TRUE(r) << local << ": " << r.error().message();
    EXPECT_TRUE(r->loopback()) << local;
  }
  for (const char* remote : {"busybox", "quay.io/a", "10.0.0.1:5000/a", "localhost.example.com/a",
                             "127.example.com/a"}) {
    auto r = registry::parse_reference(remote);
    ASSERT_TRUE(r) << remote << ": " << r.error().message();
    EXPECT_FALSE(r->loopback()) << remote;
  }
  EXPECT_EQ(registry::parse_reference("[::1]:5000/a")->host(), "::1");
  EXPECT_EQ(registry::parse_reference("quay.io:8443/a")->host(), "quay.io");
}

TEST(RegistryReference, MalformedReferencesSayWhatIsWrong) {
  struct Case {
    std::string text;
    const char* says;
  } cases[] = {
      {"", "empty"},
      {"Busybox", "lowercase"},
      {"quay.io/Team/app", "lowercase"},
      {"busybox:", "tag \"\""},
      {"busybox:-x", "tag \"-x\""},
      {"busybox:" + std::string(129, 'a'), "up to 128"},
      {"busybox:a/b", "registry \"busybox:a\""},
      {"a//b", "each /-separated part"},
      {"a/", "each /-separated part"},
      {"/a", "each /-separated part"},
      {"a..b", "each /-separated part"},
      {"a-", "each /-separated part"},
      {"a_-b", "each /-separated part"},
      {"quay.io:/a", "registry \"quay.io:\""},
      {"quay..io/a", "registry \"quay..io\""},
      {"-quay.io/a", "registry \"-quay.io\""},
      {"quay.io:99999999/a", "registry"},
      {"[::1/a", "registry"},
      {":5000/a", "registry \":5000\""},
      {"quay.io/", "each /-separated part"},
      {"busybox@sha256:abc", "64 lowercase hex"},
      {"busybox@sha256:" + std::string(64, 'A'), "64 lowercase hex"},
      {"busybox@md5:" + std::string(32, 'a'), "sha256 only"},
      {"busybox@" + std::string(64, 'a'), "ALGORITHM:HEX"},
      {"@" + digest, "no repository"},
      {std::string(256, 'a'), "at most 255"},
      {"a b", "each /-separated part"},
  };
  for (const auto& c : cases) {
    auto r = registry::parse_reference(c.text);
    ASSERT_FALSE(r) << c.text << " parsed as " << r->str();
    EXPECT_EQ(r.error().step, hutch::registry_step::reference);
    EXPECT_EQ(r.error().code.value(), EINVAL);
    EXPECT_NE(r.error().message().find(c.says), std::string::npos)
        << c.text << ": " << r.error().message();
  }
}

}  // namespace
