// hutch — registry module: pulling an image (`docker pull`): the manifest for this platform,
// its config, and each layer streamed from the registry straight into the unpacker, which
// verifies the blob's digest and the layer's diff_id as the bytes pass (no copy of the blob
// is kept, nothing is read twice). Layers download concurrently; those already unpacked in
// the store are not fetched. Rootless, where the layers apply in order into one directory,
// the first streams and the others download ahead into scratch files meanwhile. What fails
// leaves nothing in the store.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../fd.hpp"
#include "../image.hpp"
#include "auth.hpp"
#include "client.hpp"
#include "http.hpp"
#include "reference.hpp"
#include "steps.hpp"

namespace hutch::registry {

namespace detail {

/// This host's platform in the words of an image index.
inline Platform host_platform() {
  Platform p{"linux", hutch::detail::host_architecture(), {}};
  if (p.architecture == "arm64") p.variant = "v8";
  return p;
}

}  // namespace detail

/// How `Image::pull` reaches the registry and what it picks there.
struct PullOptions {
  /// The entry of a multi-platform index to take.
  Platform platform = detail::host_platform();
  Transport transport = {};
  /// Credentials to use; without them they are looked up in `credential_files`.
  std::optional<Credentials> credentials = std::nullopt;
  CredentialFiles credential_files = CredentialFiles::from_environment();
  /// Layers downloaded (and unpacked) at once.
  unsigned concurrency = 3;
  /// Bytes of each layer as they arrive; a layer already in the store reports itself done
  /// at once. Called from the download threads, one call at a time.
  ProgressCallback progress = {};
};

/// What a pull found: the manifest it took and whether any layer had to be fetched.
struct PullResult {
  std::string manifest_digest;
  std::size_t layers_fetched = 0;
};

namespace detail {

/// One pull: the client, the image's data and the progress callback, shared by its threads.
class Puller {
 public:
  Puller(Client& client, const ImageStore& store, const PullOptions& options)
      : client_(client), store_(store), options_(options), budget_(store.limits()) {}

  /// The layer `i` downloaded into `tree` while it unpacks: a thread feeds the blob into a
  /// socket the unpacker reads.
  result<void> stream_layer(Http& http, const ImageLayer& layer, hutch::detail::Tree& tree,
                            hutch::detail::Whiteouts whiteouts, LayerProgress state) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return last_error(registry_step::blob, layer.digest, "socketpair");
    }
    Fd reader(sv[0]), writer(sv[1]);
    result<void> fetched = success();
    std::thread download([&] {
      fetched = client_.blob(http, layer.digest, layer.size, [&](const char* p, std::size_t n) {
        return hutch::detail::sys::write_all(writer.get(), p, n, true);
      });
      ::shutdown(writer.get(), SHUT_WR);
    });
    result<void> unpacked = success();
    {
      hutch::detail::LayerUnpacker unpacker(layer, tree, whiteouts, budget_, report(), state);
      unpacked = unpacker.run(std::move(reader));
    }  // the reader is closed here: a download still sending stops
    download.join();
    if (!fetched && fetched.error().errno_value() != ECANCELED) return fetched.error();
    if (!unpacked) return unpacked.error();
    return fetched;
  }

  /// Each layer not yet in the store, `concurrency` at a time, into its own store entry
  /// (privileged: overlayfs layers); or all of them, in order, into one flattened entry.
  result<std::size_t> unpack(const std::vector<ImageLayer>& layers, const std::string& chain) {
    const std::size_t n = layers.size();
    const auto state = [&](std::size_t i) {
      return LayerProgress{i, n, layers[i].digest, 0, layers[i].size};
    };
    if (::geteuid() != 0) {
      HUTCH_TRY(const bool exists, hutch::detail::entry_exists(store_.dir() + "/flat/sha256/" +
                                                               hutch::detail::hex_of(chain)));
      if (exists) {
        for (std::size_t i = 0; i < n; ++i) done(state(i));
        return std::size_t{0};
      }
      HUTCH_TRYV(hutch::detail::store_entry(
          store_, "flat/sha256", hutch::detail::hex_of(chain),
          [&](const std::string& tmp) -> result<void> { return flatten(layers, tmp); }));
      return n;
    }
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < n; ++i) {
      HUTCH_TRY(const bool exists,
                hutch::detail::entry_exists(store_.dir() + "/layers/sha256/" +
                                            hutch::detail::hex_of(layers[i].diff_id)));
      if (exists) {
        done(state(i));
      } else {
        missing.push_back(i);
      }
    }
    std::atomic<std::size_t> next{0};
    std::mutex failed_mutex;
    std::optional<Error> failed;
    const auto work = [&] {
      Http http = client_.http();
      for (std::size_t k; (k = next++) < missing.size();) {
        {
          std::lock_guard lock(failed_mutex);
          if (failed) return;
        }
        const ImageLayer& layer = layers[missing[k]];
        auto entry = hutch::detail::store_entry(
            store_, "layers/sha256", hutch::detail::hex_of(layer.diff_id),
            [&](const std::string& tmp) -> result<void> {
              HUTCH_TRY(hutch::detail::Tree tree, hutch::detail::Tree::open(tmp));
              return stream_layer(http, layer, tree, hutch::detail::Whiteouts::overlay,
                                  state(missing[k]));
            });
        if (!entry) {
          std::lock_guard lock(failed_mutex);
          if (!failed) failed = entry.error();
          return;
        }
      }
    };
    const std::size_t threads =
        std::min<std::size_t>(missing.size(), options_.concurrency ? options_.concurrency : 1);
    std::vector<std::thread> workers;
    for (std::size_t t = 1; t < threads; ++t) workers.emplace_back(work);
    if (threads > 0) work();
    for (std::thread& w : workers) w.join();
    if (failed) return *failed;
    return missing.size();
  }

  /// Rootless: the layers applied in order into one directory. The first streams straight
  /// into the unpacker; the others download meanwhile (`concurrency` - 1 at a time) into
  /// files of a locked scratch directory in the store's tmp, each unpacked from its file
  /// (and verified there, before any of it is used) when its turn comes.
  result<void> flatten(const std::vector<ImageLayer>& layers, const std::string& entry) {
    const std::size_t n = layers.size();
    HUTCH_TRY(hutch::detail::Tree tree, hutch::detail::Tree::open(entry));
    std::string dir = store_.dir() + "/tmp/unpack-blobs-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) return last_error(image_step::store, dir);
    Fd lock(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (lock) ::flock(lock.get(), LOCK_EX);  // alive: reclaim_unpacks leaves it
    std::vector<result<void>> fetched(n, success());
    std::vector<bool> ready(n, false);
    std::mutex m;
    std::condition_variable changed;
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> next{1};
    const auto blob = [&](std::size_t i) { return dir + "/" + std::to_string(i); };
    const auto download = [&] {
      Http http = client_.http();
      for (std::size_t i; !stop && (i = next++) < n;) {
        auto r = fetch_to_file(http, layers[i], blob(i), stop,
                               {i, n, layers[i].digest, 0, layers[i].size});
        std::lock_guard g(m);
        fetched[i] = std::move(r);
        ready[i] = true;
        changed.notify_all();
      }
    };
    std::vector<std::thread> workers;
    const unsigned ahead = options_.concurrency > 1 ? options_.concurrency - 1 : 1;
    for (unsigned t = 0; t < ahead && t + 1 < n; ++t) workers.emplace_back(download);
    result<void> outcome = [&]() -> result<void> {
      Http http = client_.http();
      HUTCH_TRYV(stream_layer(http, layers[0], tree, hutch::detail::Whiteouts::apply,
                              {0, n, layers[0].digest, 0, layers[0].size}));
      for (std::size_t i = 1; i < n; ++i) {
        {
          std::unique_lock g(m);
          changed.wait(g, [&] { return ready[i]; });
          HUTCH_TRYV(fetched[i]);
        }
        ImageLayer from_file = layers[i];
        from_file.blob = blob(i);
        hutch::detail::LayerUnpacker unpacker(from_file, tree, hutch::detail::Whiteouts::apply,
                                              budget_, {}, {});
        if (auto r = unpacker.run(); !r) {
          Error e = r.error();
          if (e.subject == from_file.blob) e.subject = layers[i].digest;  // not a scratch path
          return e;
        }
        ::unlink(from_file.blob.c_str());
      }
      return success();
    }();
    stop = true;
    for (std::thread& w : workers) w.join();
    (void)hutch::detail::ScratchDir::remove_tree(dir);
    return outcome;
  }

 private:
  /// A layer's blob written to `path` (its progress reported as it arrives); `stop` ends it.
  result<void> fetch_to_file(Http& http, const ImageLayer& layer, const std::string& path,
                             const std::atomic<bool>& stop, LayerProgress state) {
    Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return last_error(image_step::store, path, "a layer's download");
    const ProgressCallback progress = report();
    return client_.blob(http, layer.digest, layer.size, [&](const char* p, std::size_t n) {
      if (stop) return false;
      for (std::size_t done = 0; done < n;) {
        const ssize_t w =
            hutch::detail::sys::retry([&] { return ::write(out.get(), p + done, n - done); });
        if (w <= 0) return false;
        done += static_cast<std::size_t>(w);
      }
      state.done += n;
      if (progress) progress(state);
      return true;
    });
  }

  /// The caller's callback, one call at a time.
  ProgressCallback report() {
    if (!options_.progress) return {};
    return [this](const LayerProgress& p) {
      std::lock_guard lock(progress_mutex_);
      options_.progress(p);
    };
  }
  void done(LayerProgress p) {
    p.done = p.total;
    p.cached = true;
    if (auto r = report()) r(p);
  }

  Client& client_;
  const ImageStore& store_;
  const PullOptions& options_;
  hutch::detail::UnpackBudget budget_;
  std::mutex progress_mutex_;
};

/// The manifest for `platform` that `fetched` is or (an index) names, fetched by digest.
inline result<FetchedManifest> platform_manifest(Client& client, Http& http,
                                                 FetchedManifest fetched,
                                                 const Platform& platform) {
  for (int depth = 0;; ++depth) {
    std::string type = fetched.media_type;
    if (!hutch::detail::is_index_type(type) && !hutch::detail::is_manifest_type(type)) {
      // Not said by the Content-Type: the document's own mediaType decides.
      const nlohmann::json j = nlohmann::json::parse(fetched.text, nullptr, false);
      type = j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()
                 ? j["mediaType"].get<std::string>()
                 : std::string();
      if (type.empty() && j.is_object()) {
        type =
            std::string(j.contains("manifests") ? media_type::oci_index : media_type::oci_manifest);
      }
    }
    if (hutch::detail::is_manifest_type(type)) {
      fetched.media_type = type;
      return fetched;
    }
    if (!hutch::detail::is_index_type(type)) {
      return make_error(registry_step::manifest, ENOTSUP, client.reference().str(),
                        fmt::format("not an image manifest or index ({})",
                                    printable(type.empty() ? fetched.media_type : type, 100)));
    }
    if (depth >= 4) {
      return make_error(registry_step::manifest, ELOOP, client.reference().str(),
                        "indexes nested too deep");
    }
    HUTCH_TRY(const std::vector<Descriptor> entries,
              hutch::detail::parse_index(fetched.text, fetched.digest));
    HUTCH_TRY(const Descriptor chosen, hutch::detail::pick_platform(entries, platform));
    if (chosen.size > hutch::detail::max_manifest_size) {
      return make_error(registry_step::manifest, EFBIG, chosen.digest,
                        "the index names a manifest larger than 4 MiB");
    }
    HUTCH_TRY(FetchedManifest next, client.manifest(http, chosen.digest));
    if (next.text.size() != chosen.size) {
      return make_error(image_step::verify, EBADMSG, chosen.digest,
                        "the manifest's size is not the index's");
    }
    next.media_type = chosen.media_type;
    fetched = std::move(next);
  }
}

}  // namespace detail

/// `Image::pull`, with what it found: the manifest digest and how many layers it fetched.
inline result<PullResult> pull_into(const std::string& text, const ImageStore& store,
                                    const PullOptions& options = {}) {
  HUTCH_TRY(const Reference ref, parse_reference(text));
  Credentials credentials;
  if (options.credentials) {
    credentials = *options.credentials;
  } else {
    HUTCH_TRY(credentials, find_credentials(ref, options.credential_files));
  }
  Client client(ref, options.transport, std::move(credentials));
  HUTCH_TRYV(client.load_trust());
  detail::Http http = client.http();
  HUTCH_TRYV(client.ping(http));
  HUTCH_TRY(FetchedManifest top, client.manifest(http, ref.manifest_ref()));
  HUTCH_TRY(const FetchedManifest m,
            detail::platform_manifest(client, http, std::move(top), options.platform));
  HUTCH_TRY(const hutch::detail::Manifest manifest,
            hutch::detail::parse_manifest(m.text, m.digest));
  // A config pulled before is read from the store (its digest checked again).
  hutch::detail::ImageData d;
  d.dir = store.dir();
  auto kept = hutch::detail::verified_blob(d, manifest.config, hutch::detail::max_config_size);
  std::string config;
  if (kept) {
    config = std::move(*kept);
  } else {
    HUTCH_TRY(config, client.small_blob(http, manifest.config, hutch::detail::max_config_size));
  }
  // The image as the store will hold it: checked (architecture, diff_ids) before any layer.
  d.config_digest = manifest.config.digest;
  std::vector<ImageLayer> layers;
  for (const Descriptor& l : manifest.layers) {
    layers.push_back({l.digest, {}, l.media_type, {}, l.size});
  }
  HUTCH_TRYV(hutch::detail::apply_config(
      d, config, std::move(layers),
      {.architecture = options.platform.architecture, .os = options.platform.os}));
  if (d.layers.empty()) return make_error(registry_step::pull, EINVAL, ref.str(), "no layers");
  detail::Puller puller(client, store, options);
  HUTCH_TRY(const std::size_t fetched, puller.unpack(d.layers, hutch::detail::chain_id(d.layers)));
  HUTCH_TRYV(hutch::detail::store_blob(store, m.digest, m.text));
  HUTCH_TRYV(hutch::detail::store_blob(store, manifest.config.digest, config));
  HUTCH_TRYV(hutch::detail::store_ref(store, ref.str(), m.digest));
  return PullResult{m.digest, fetched};
}

}  // namespace hutch::registry

namespace hutch {

inline result<Image> Image::pull(const std::string& reference, const ImageStore& store,
                                 const registry::PullOptions& options) {
  HUTCH_TRY(const registry::Reference ref, registry::parse_reference(reference));
  HUTCH_TRYV(registry::pull_into(reference, store, options));
  return stored(ref.str(), store,
                {.architecture = options.platform.architecture, .os = options.platform.os});
}

inline result<Image> Image::pull(const std::string& reference, const ImageStore& store) {
  return pull(reference, store, registry::PullOptions{});
}

}  // namespace hutch
