// Tests of what only the SQLite store has (its contract with the Store interface is tested with
// the PostgreSQL store's in test_store_contract.cpp): migrations by user_version, sqlite:// URLs
// and the thin SQLite layer.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/error.h"
#include "store/sqlite_db.h"
#include "store/sqlite_store.h"
#include "test_support.h"

namespace df::store {
namespace {

namespace fs = std::filesystem;
using test::error_of;

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string db_path() const { return (dir_.path() / "jobs.sqlite3").string(); }

  test::TestDir dir_{"df_sqlite_store_"};
};

TEST_F(SqliteStoreTest, ReopeningDoesNotRerunMigrations) {
  for (int open = 0; open < 3; ++open) {
    SqliteStore store(db_path());
  }
  SqliteDb db(db_path());
  auto version = db.prepare("PRAGMA user_version");
  ASSERT_TRUE(version.step());
  // One version per migration file, each applied once.
  int64_t migrations = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(DF_TEST_DATA_DIR) /
                                                  "../../../src/store/migrations/sqlite")) {
    migrations += entry.path().extension() == ".sql";
  }
  EXPECT_EQ(version.column_int(0), migrations);
}

TEST_F(SqliteStoreTest, DatabaseFromANewerBuildIsRefused) {
  {
    SqliteDb db(db_path());
    db.exec("PRAGMA user_version = 99");
  }
  const Error error = error_of([&] { SqliteStore newer(db_path()); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("newer"), std::string::npos) << error.what();
}

TEST_F(SqliteStoreTest, OpenStoreTakesSqliteUrlsAndMakesTheFolder) {
  const fs::path nested = dir_.path() / "data" / "db" / "store.sqlite3";
  auto store = open_store("sqlite://" + nested.string());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::exists(nested));
  EXPECT_NO_THROW(store->ping());
  for (const std::string url : {"sqlite://", "mysql://localhost/db", "", "jobs.sqlite3"}) {
    const Error error = error_of([&] { open_store(url); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << url;
    EXPECT_NE(std::string(error.what()).find("DREAMFORGE_DATABASE_URL"), std::string::npos)
        << error.what();
  }
}

TEST(SqliteDb, UncommittedTransactionIsRolledBack) {
  test::TestDir dir("df_sqlite_db_");
  SqliteDb db((dir.path() / "t.sqlite3").string());
  db.exec("CREATE TABLE t (v INTEGER)");
  {
    SqliteTransaction transaction(db);
    db.exec("INSERT INTO t VALUES (1)");
  }
  {
    SqliteTransaction transaction(db);
    db.exec("INSERT INTO t VALUES (2)");
    transaction.commit();
  }
  auto query = db.prepare("SELECT group_concat(v) FROM t");
  ASSERT_TRUE(query.step());
  EXPECT_EQ(query.column_text(0), "2");
}

TEST(SqliteDb, BindsNullsAndReportsSqlErrorsAsUnavailable) {
  test::TestDir dir("df_sqlite_db_");
  SqliteDb db((dir.path() / "t.sqlite3").string());
  db.exec("CREATE TABLE t (a INTEGER, b TEXT)");
  db.prepare("INSERT INTO t VALUES (?, ?)").bind(1, std::optional<int>()).bind(2, "x").run();
  auto query = db.prepare("SELECT a, b FROM t");
  ASSERT_TRUE(query.step());
  EXPECT_TRUE(query.column_is_null(0));
  EXPECT_EQ(query.column_text(1), "x");
  EXPECT_FALSE(query.step());
  EXPECT_EQ(error_of([&] { db.exec("SELECT * FROM missing"); }).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(error_of([&] { db.prepare("NOT SQL"); }).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(error_of([&] { SqliteDb((dir.path() / "no" / "such" / "dir.db").string()); }).code(),
            ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace df::store
