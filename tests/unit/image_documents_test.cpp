// The image spec's documents, read strictly: a field of the wrong type, an unknown media
// type, a negative size or a layer that is no tarball is an error that names it.
#include <gtest/gtest.h>

#include <hutch/image.hpp>

using nlohmann::json;

namespace {

const std::string digest_a = "sha256:" + std::string(64, 'a');
const std::string digest_b = "sha256:" + std::string(64, 'b');

json descriptor(std::string media_type, std::string digest = digest_a, json size = 10) {
  return {{"mediaType", std::move(media_type)}, {"digest", std::move(digest)}, {"size", size}};
}

std::string manifest_with(json layer) {
  return json{{"schemaVersion", 2},
              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
              {"config", descriptor("application/vnd.oci.image.config.v1+json", digest_b)},
              {"layers", {std::move(layer)}}}
      .dump();
}

std::string refusal(const hutch::result<hutch::detail::Manifest>& m) {
  return m ? std::string("accepted") : m.error().message();
}

}  // namespace

TEST(ImageDocuments, AManifestsLayersAreTarballs) {
  for (const char* ok :
       {"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip"}) {
    EXPECT_TRUE(hutch::detail::parse_manifest(manifest_with(descriptor(ok)), "m")) << ok;
  }
  for (const char* bad :
       {"application/x-not-a-tarball", "application/vnd.oci.image.layer.v1.tar+xz",
        "application/vnd.oci.image.layer.v1.tarball", "text/plain"}) {
    auto m = hutch::detail::parse_manifest(manifest_with(descriptor(bad)), "m");
    EXPECT_NE(refusal(m).find(bad), std::string::npos) << refusal(m);
  }
}

TEST(ImageDocuments, DescriptorsNeedADigestAndASizeThatIsNotNegative) {
  EXPECT_NE(
      refusal(hutch::detail::parse_manifest(
                  manifest_with(descriptor("application/vnd.oci.image.layer.v1.tar", digest_a, -5)),
                  "m"))
          .find("\"size\" is negative"),
      std::string::npos);
  EXPECT_NE(refusal(hutch::detail::parse_manifest(
                        manifest_with(
                            descriptor("application/vnd.oci.image.layer.v1.tar", "sha256:short")),
                        "m"))
                .find("\"digest\""),
            std::string::npos);
  EXPECT_NE(refusal(hutch::detail::parse_manifest(
                        manifest_with(
                            descriptor("application/vnd.oci.image.layer.v1.tar", digest_a, "10")),
                        "m"))
                .find("\"size\""),
            std::string::npos);
}

TEST(ImageDocuments, AManifestOfAnotherKindIsRefused) {
  json m = json::parse(manifest_with(descriptor("application/vnd.oci.image.layer.v1.tar")));
  m["mediaType"] = "application/vnd.example.other+json";
  auto other = hutch::detail::parse_manifest(m.dump(), "m");
  EXPECT_NE(refusal(other).find("not an image manifest"), std::string::npos) << refusal(other);
  m = json::parse(manifest_with(descriptor("application/vnd.oci.image.layer.v1.tar")));
  m["config"]["mediaType"] = "application/octet-stream";
  EXPECT_NE(refusal(hutch::detail::parse_manifest(m.dump(), "m")).find("config.mediaType"),
            std::string::npos);
  for (const char* junk : {"", "[]", "{", "null", "{\"layers\": 5}"}) {
    EXPECT_FALSE(hutch::detail::parse_manifest(junk, "m")) << junk;
    EXPECT_FALSE(hutch::detail::parse_index(junk, "i")) << junk;
  }
}

TEST(ImageDocuments, AnIndexPicksThePlatformAndNamesWhatItHas) {
  json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests",
                 {descriptor("application/vnd.oci.image.manifest.v1+json", digest_a),
                  descriptor("application/vnd.oci.image.manifest.v1+json", digest_b)}}};
  index["manifests"][0]["platform"] = {
      {"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}};
  index["manifests"][1]["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  auto parsed = hutch::detail::parse_index(index.dump(), "i");
  ASSERT_TRUE(parsed) << parsed.error().message();
  auto amd64 = hutch::detail::pick_platform(*parsed, {"linux", "amd64", {}});
  ASSERT_TRUE(amd64);
  EXPECT_EQ(amd64->digest, digest_b);
  auto arm = hutch::detail::pick_platform(*parsed, {"linux", "arm64", "v8"});
  ASSERT_TRUE(arm);
  EXPECT_EQ(arm->digest, digest_a);
  auto none = hutch::detail::pick_platform(*parsed, {"linux", "s390x", {}});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("linux/arm64/v8, linux/amd64"), std::string::npos)
      << none.error().message();
}

TEST(ImageDocuments, AConfigsFieldsHaveTheirTypes) {
  auto apply = [](json run) {
    hutch::detail::ImageData d;
    d.config_digest = digest_b;
    json config = {{"architecture", hutch::detail::host_architecture()},
                   {"os", "linux"},
                   {"config", std::move(run)},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", json::array()}}}};
    return hutch::detail::apply_config(d, config.dump(), {}, {});
  };
  EXPECT_TRUE(apply({{"User", "1000:1000"}, {"Env", {"A=1"}}, {"Cmd", nullptr}}));
  const std::vector<std::pair<json, std::string>> bad = {
      {{{"User", 1000}}, "\"User\" must be a string"},
      {{{"Env", {"NOEQUALS"}}}, "\"Env\""},
      {{{"Env", "A=1"}}, "\"Env\" must be an array"},
      {{{"Cmd", {"sh", 5}}}, "\"Cmd\""},
      {{{"Entrypoint", "sh"}}, "\"Entrypoint\""},
      {{{"WorkingDir", json::array()}}, "\"WorkingDir\""},
      {{{"ExposedPorts", {"80/tcp"}}}, "\"ExposedPorts\""},
  };
  for (const auto& [run, text] : bad) {
    auto r = apply(run);
    ASSERT_FALSE(r) << run.dump();
    EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
  }
  hutch::detail::ImageData d;
  auto missing = hutch::detail::apply_config(d, R"({"os":"linux"})", {}, {});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("\"rootfs\" is missing"), std::string::npos);
}

TEST(ImageDocuments, PathsFromAnImageStayInside) {
  using hutch::detail::image_path;
  EXPECT_EQ(*image_path("./a//b/./c/", "p"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(image_path(".", "p")->empty());
  for (const char* bad : {"/etc/passwd", "a/../../b", "..", "a/.."}) {
    EXPECT_FALSE(image_path(bad, "p")) << bad;
  }
  EXPECT_FALSE(image_path(std::string(5000, 'a'), "p"));
  EXPECT_FALSE(image_path(std::string(300, 'a'), "p")) << "a component past NAME_MAX";
}
