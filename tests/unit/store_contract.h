// The fixture of the Store contract tests: each test gets a new, empty database of the backend
// it runs on (SQLite in a file, or PostgreSQL on a real server on loopback), and small makers of
// jobs, events and artifacts.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "core/ids.h"
#include "postgres_server.h"
#include "store/store.h"

namespace df::store::contract {

namespace fs = std::filesystem;

constexpr int64_t kLongLease = 60000;
constexpr int64_t kExpiredLease = -1;  // already past when the claim commits

// "job-007": ids that sort in creation order, like UUIDv7s made milliseconds apart.
inline std::string job_id(int n) {
  char id[16];
  std::snprintf(id, sizeof(id), "job-%03d", n);
  return id;
}

inline Job make_job(const std::string& id, int priority = 0, const std::string& key = "",
                    const std::string& hash = "hash-1") {
  Job job;
  job.id = id;
  job.type = "generate";
  job.spec = {{"prompt", "a red kite"}, {"count", 2}};
  job.idempotency_key = key;
  job.request_hash = hash;
  job.priority = priority;
  job.max_attempts = 3;
  job.created_ms = now_ms();
  return job;
}

inline Event make_event(const std::string& job_id, const std::string& type,
                        std::optional<int> item_index = std::nullopt) {
  Event event;
  event.job_id = job_id;
  event.type = type;
  event.item_index = item_index;
  event.message = type + " message";
  event.plain = type + " in plain words";
  event.data = {{"progress", 0.25}, {"note", type}};
  return event;
}

inline Event terminal_event(const std::string& job_id, const std::string& status) {
  Event event = make_event(job_id, "job_finished");
  event.data = {{"status", status}};
  return event;
}

inline Lease lease_of(const Job& claimed) { return {claimed.id, claimed.worker_id, claimed.attempts}; }

inline Artifact make_artifact(const std::string& job_id, int item_index, const std::string& key) {
  Artifact artifact;
  artifact.job_id = job_id;
  artifact.item_index = item_index;
  artifact.key = key;
  artifact.content_type = "image/png";
  artifact.size = 1234;
  artifact.sha256 = std::string(64, 'a');
  artifact.seed = 42;
  artifact.width = 64;
  artifact.height = 96;
  artifact.metadata = {{"prompt", "a red kite"}};
  artifact.created_ms = 1700000000000;
  return artifact;
}

// A store under test: how to make a new, empty database for it (`name` tells two apart).
struct Backend {
  std::string name;
  std::string (*new_database_url)(const fs::path& dir, const std::string& name);
};

inline void PrintTo(const Backend& backend, std::ostream* out) { *out << backend.name; }

inline std::string new_sqlite_database(const fs::path& dir, const std::string& name) {
  return "sqlite://" + (dir / (name + ".sqlite3")).string();
}

inline std::string new_postgres_database(const fs::path&, const std::string&) {
  return test::PostgresServer::instance().create_database();
}

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    try {
      url_ = new_database("jobs");
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    store_ = open_store(url_);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::string new_database(const std::string& name) {
    return GetParam().new_database_url(dir_, name);
  }
  void reopen() {
    store_.reset();
    store_ = open_store(url_);
  }
  // Creates the job and claims it as `worker`; the job must be the next claimable one.
  Job create_and_claim(const std::string& id, const std::string& worker = "w1",
                       int64_t lease_ms = kLongLease) {
    store_->create_job(make_job(id));
    auto claimed = store_->claim_job(worker, lease_ms);
    EXPECT_TRUE(claimed);
    EXPECT_EQ(claimed->id, id);
    return *claimed;
  }

  const fs::path dir_ =
      fs::temp_directory_path() / ("df_store_contract_" + std::to_string(::getpid()));
  std::string url_;
  std::unique_ptr<Store> store_;
};

}  // namespace df::store::contract
