// hutch::registry's authentication inputs: WWW-Authenticate challenges, and credentials from
// auth.json, docker's config.json and credential helpers (stand-ins written by the test).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include <hutch/registry.hpp>

namespace {

namespace registry = hutch::registry;

TEST(RegistryAuth, ABearerChallengeGivesRealmServiceAndScope) {
  auto c = registry::parse_challenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c[0].param("service"), "registry.docker.io");
  EXPECT_EQ(c[0].param("scope"), "repository:library/busybox:pull");
  EXPECT_EQ(c[0].param("error"), "");
}

TEST(RegistryAuth, ChallengesAreReadAsRfc7235WritesThem) {
  // Two challenges in one header, spaces around "=", a token value, escapes, case.
  auto c = registry::parse_challenges(
      R"(Basic realm="Registry \"Realm\"", charset=UTF-8, BEARER Realm = "https://t/x" , error="insufficient_scope")");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].param("realm"), "Registry \"Realm\"");
  EXPECT_EQ(c[0].param("charset"), "UTF-8");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].param("realm"), "https://t/x");
  EXPECT_EQ(c[1].param("error"), "insufficient_scope");
  // A bare scheme; an unterminated quote keeps what was read.
  auto bare = registry::parse_challenges("Basic");
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_EQ(bare[0].scheme, "basic");
  auto cut = registry::parse_challenges(R"(Bearer realm="https://t/x)");
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_EQ(cut[0].param("realm"), "");
  EXPECT_TRUE(registry::parse_challenges("").empty());
  EXPECT_TRUE(registry::parse_challenges("  ,, ").empty());
}

TEST(RegistryAuth, Base64IsDecodedStrictly) {
  using registry::detail::base64_decode;
  EXPECT_EQ(base64_decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(base64_decode("dXNlcjpwYXNzMQ=="), "user:pass1");
  EXPECT_EQ(base64_decode("dXNlcjpwYXNzMQ"), "user:pass1");
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_FALSE(base64_decode("dXNl cjpw"));
  EXPECT_FALSE(base64_decode("dXNlcjpw=YXNz"));
  EXPECT_FALSE(base64_decode("A"));
}

TEST(RegistryAuth, AuthKeysNameRegistriesAndNamespaces) {
  using registry::detail::auth_key;
  EXPECT_EQ(auth_key("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(auth_key("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(auth_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
  EXPECT_EQ(auth_key("quay.io/team/"), "quay.io/team");
  EXPECT_EQ(auth_key("quay.io"), "quay.io");
}

/// A scratch directory with files, removed after.
struct Scratch {
  std::string dir;
  Scratch() {
    char tmpl[] = "/tmp/hutch-auth-unit.XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~Scratch() { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) const {
    const std::string path = dir + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    ::chmod(path.c_str(), mode);
    return path;
  }
};

registry::Reference ref(const char* text) {
  return *registry::parse_reference(text);
}

TEST(RegistryAuth, TheMostSpecificEntryOfTheFirstFileThatHasOneWins) {
  Scratch s;
  registry::CredentialFiles where;
  where.files = {
      s.dir + "/missing.json",  // skipped
      s.write("auth.json", R"({"auths":{
        "quay.io":{"auth":"cXVheTpvbmU="},
        "quay.io/team":{"auth":"dGVhbTp0d28="},
        "other.example":{"auth":"b3RoZXI6eA=="}}})"),
      s.write("config.json", R"({"auths":{
        "https://index.docker.io/v1/":{"auth":"aHViOmh1YnBhc3M="},
        "127.0.0.1:5000":{"username":"local","password":"pw"},
        "quay.io":{"auth":"bm90OnVzZWQ="}}})"),
  };
  auto hub = registry::find_credentials(ref("busybox"), where);
  ASSERT_TRUE(hub) << hub.error().message();
  EXPECT_EQ(hub->username, "hub");
  EXPECT_EQ(hub->password, "hubpass");
  EXPECT_EQ(hub->source, where.files[2]);
  auto team = registry::find_credentials(ref("quay.io/team/app"), where);
  ASSERT_TRUE(team);
  EXPECT_EQ(team->username, "team");
  auto quay = registry::find_credentials(ref("quay.io/teammate/app"), where);
  ASSERT_TRUE(quay);
  EXPECT_EQ(quay->username, "quay");  // "quay.io/team" is not a prefix of another namespace
  auto local = registry::find_credentials(ref("127.0.0.1:5000/x"), where);
  ASSERT_TRUE(local);
  EXPECT_EQ(local->username, "local");
  EXPECT_EQ(local->password, "pw");
  auto none = registry::find_credentials(ref("ghcr.io/x"), where);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(RegistryAuth, CredentialHelpersAreAskedAndTheirSecretsNeverShown) {
  Scratch s;
  // A helper that knows one server; says "credentials not found" for others, and fails
  // loudly for a third.
  s.write("docker-credential-fake",
          "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nserver=$(cat)\n"
          "case \"$server\" in\n"
          "  https://index.docker.io/v1/) echo '{\"ServerURL\":\"x\",\"Username\":\"hu\","
          "\"Secret\":\"s3cret\"}';;\n"
          "  token.example) echo '{\"Username\":\"<token>\",\"Secret\":\"idtok\"}';;\n"
          "  broken.example) echo 'keychain locked for broken.example'; exit 1;;\n"
          "  *) echo 'credentials not found in native keychain'; exit 1;;\n"
          "esac\n",
          0755);
  registry::CredentialFiles where;
  where.helper_path = s.dir;
  where.files = {s.write("config.json", R"({"credsStore":"fake",
      "credHelpers":{"token.example":"fake","broken.example":"fake","gone.example":"absent"},
      "auths":{"own.example":{"auth":"b3duOnB3"}}})")};
  auto hub = registry::find_credentials(ref("busybox"), where);
  ASSERT_TRUE(hub) << hub.error().message();
  EXPECT_EQ(hub->username, "hu");
  EXPECT_EQ(hub->password, "s3cret");
  EXPECT_EQ(hub->source, "docker-credential-fake");
  auto token = registry::find_credentials(ref("token.example/a"), where);
  ASSERT_TRUE(token) << token.error().message();
  EXPECT_EQ(token->identity_token, "idtok");
  EXPECT_EQ(token->username, "");
  auto own = registry::find_credentials(ref("own.example/a"), where);  // before credsStore
  ASSERT_TRUE(own);
  EXPECT_EQ(own->username, "own");
  auto unknown = registry::find_credentials(ref("unknown.example/a"), where);
  ASSERT_TRUE(unknown) << unknown.error().message();
  EXPECT_TRUE(unknown->empty());
  auto broken = registry::find_credentials(ref("broken.example/a"), where);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().step, hutch::registry_step::credentials);
  EXPECT_NE(broken.error().message().find("keychain locked"), std::string::npos)
      << broken.error().message();
  auto gone = registry::find_credentials(ref("gone.example/a"), where);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().errno_value(), ENOENT);
  EXPECT_NE(gone.error().message().find("docker-credential-absent"), std::string::npos);
  for (const auto* e : {&broken.error(), &gone.error()}) {
    EXPECT_EQ(e->message().find("s3cret"), std::string::npos);
  }
}

TEST(RegistryAuth, BrokenFilesAndEntriesAreNamed) {
  Scratch s;
  registry::CredentialFiles where;
  where.files = {s.write("bad.json", "{not json")};
  auto bad = registry::find_credentials(ref("busybox"), where);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find(where.files[0]), std::string::npos);
  where.files = {s.write("entry.json", R"({"auths":{"docker.io":{"auth":"bm8tY29sb24="}}})")};
  auto entry = registry::find_credentials(ref("busybox"), where);
  ASSERT_FALSE(entry);
  EXPECT_NE(entry.error().message().find("USER:PASSWORD"), std::string::npos)
      << entry.error().message();
  EXPECT_EQ(entry.error().message().find("no-colon"), std::string::npos) << "a secret shown";
  where.files = {s.write("helper.json", R"({"credsStore":"../bin/sh"})")};
  auto helper = registry::find_credentials(ref("busybox"), where);
  ASSERT_FALSE(helper);
  EXPECT_NE(helper.error().message().find("plain word"), std::string::npos);
}

TEST(RegistryAuth, TheEnvironmentNamesTheFilesInPodmansAndDockersOrder) {
  ::setenv("REGISTRY_AUTH_FILE", "/a/auth.json", 1);
  ::setenv("DOCKER_CONFIG", "/d", 1);
  auto f = registry::CredentialFiles::from_environment();
  ASSERT_EQ(f.files.size(), 2u);
  EXPECT_EQ(f.files[0], "/a/auth.json");
  EXPECT_EQ(f.files[1], "/d/config.json");
  ::unsetenv("REGISTRY_AUTH_FILE");
  ::unsetenv("DOCKER_CONFIG");
  ::setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
  ::setenv("HOME", "/home/u", 1);
  f = registry::CredentialFiles::from_environment();
  ASSERT_EQ(f.files.size(), 2u);
  EXPECT_EQ(f.files[0], "/run/user/7/containers/auth.json");
  EXPECT_EQ(f.files[1], "/home/u/.docker/config.json");
}

}  // namespace
