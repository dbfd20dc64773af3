// replica.cpp: a read replica kept current by a follower process.
//
// A leader process writes to its store; this process follows the leader's
// change feed with stowage::ChangeReader (which reads the leader's files
// without its lock) and applies each change to a replica in a second
// directory, together with the sequence applied, in one atomic batch: a
// follower killed at any point goes on from where its replica stands.
//
//   usage: replica DIR    (makes DIR/leader and DIR/replica)
#include <stowage/stowage.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

struct User {
  std::string name;
  std::uint32_t visits = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & visits;
  }
};

// The leader: 20,000 visits by 500 users, some of whom leave.
int lead(const std::filesystem::path& dir) {
  stowage::Options o;
  o.change_feed_bytes = std::uint64_t{64} << 20;  // keep released WAL for followers
  o.write_buffer_bytes = 256 << 10;               // small, so flushes release WAL while the follower reads
  stowage::Database db(dir, o);
  auto users = db.collection<std::uint64_t, User>("users");
  for (std::uint64_t i = 0; i < 20000; ++i) {
    const std::uint64_t id = (i * 7919) % 500;
    if (i % 97 == 0) {
      users.erase(id);
    } else {
      auto u = users.get(id).value_or(User{"user-" + std::to_string(id), 0});
      ++u.visits;
      users.put(id, u);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  const std::filesystem::path root = argc > 1 ? argv[1] : "replica-demo";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  const auto leader_dir = root / "leader", replica_dir = root / "replica";
  {  // so the follower finds the store and its collection from the start
    stowage::Database created(leader_dir);
    created.collection<std::uint64_t, User>("users");
  }

  const pid_t leader = ::fork();
  if (leader < 0) return 1;
  if (leader == 0) ::_exit(lead(leader_dir));

  // The follower: the replica's records and the sequence it has applied.
  stowage::Database replica(replica_dir);
  auto users = replica.collection<std::uint64_t, User>("users");
  auto meta = replica.collection<std::string, std::uint64_t>("meta");
  stowage::ChangeReader<std::uint64_t, User> feed(leader_dir, "users");
  std::uint64_t at = meta.get("applied").value_or(0), changes = 0;
  for (bool leader_done = false;;) {
    if (!leader_done) {
      int status = 0;
      leader_done = ::waitpid(leader, &status, WNOHANG) == leader;
      if (leader_done && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) return 1;
    }
    auto batch = replica.batch();
    const std::uint64_t next = feed.changes_since(at, [&](const stowage::Change<std::uint64_t, User>& c) {
      if (c.erased)
        batch.erase(users, c.key);
      else
        batch.put(users, c.key, *c.value);
      ++changes;
    });
    if (next != at) {
      batch.put(meta, "applied", next);
      batch.commit();  // the changes and the sequence, all or nothing
      at = next;
    } else if (leader_done) {
      break;  // the leader has stopped and every change is applied
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // nothing new yet
    }
  }

  // The replica now holds what the leader holds.
  stowage::Options ro;
  ro.read_only = true;
  stowage::Database leader_db(leader_dir, ro);
  auto theirs = leader_db.collection<std::uint64_t, User>("users");
  std::size_t same = 0, differ = 0;
  for (const auto& [id, u] : theirs.scan()) {
    auto mine = users.get(id);
    (mine && mine->name == u.name && mine->visits == u.visits ? same : differ) += 1;
  }
  if (users.size() != theirs.size()) ++differ;
  std::printf("replica applied %llu changes up to sequence %llu: %zu users equal, %zu differ\n",
              static_cast<unsigned long long>(changes), static_cast<unsigned long long>(at), same, differ);
  return differ == 0 && same > 0 ? 0 : 1;
}
