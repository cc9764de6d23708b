// The shards of a partitioned item index (`ranklet index --partitions`), fetched so that the
// shop's server learns next to nothing from them.
//
// Every recommendation asks for the same number of shards, `nprobe + decoys`, whatever the
// visitor's history: the wanted cells that are not in the memory cache, padded with decoy cells
// drawn uniformly at random (crypto.getRandomValues) from those neither wanted nor cached. All
// requests start together in a shuffled order; only the wanted ones are awaited. The server
// therefore sees, per recommendation, a fixed number of requests for content-addressed shard
// files, and cannot tell which of them were wanted. A decoy is read to its end like a wanted
// shard and then dropped, undecoded: a body cancelled early would show in the server's logs
// (bytes sent short of the file's size) and mark the request as a decoy. Fewer requests go out only when fewer than that many shards are
// left outside the memory cache, which depends on earlier requests, not on the history.
//
// Decoded shards are kept in memory, least recently used out first (`capacity` shards).

/** A uniform integer in [0, n), from the platform's cryptographic generator. */
function randomBelow(n) {
  const limit = Math.floor(0x100000000 / n) * n; // rejection keeps it unbiased
  const word = new Uint32Array(1);
  do crypto.getRandomValues(word); while (word[0] >= limit);
  return word[0] % n;
}

/** `count` distinct entries of `pool`, uniformly, in random order. */
export function sample(pool, count, below = randomBelow) {
  const rest = pool.slice();
  const take = Math.min(count, rest.length);
  for (let i = 0; i < take; i += 1) {
    const j = i + below(rest.length - i);
    [rest[i], rest[j]] = [rest[j], rest[i]];
  }
  return rest.slice(0, take);
}

export class ShardStore {
  /**
   * `files`: the shard file names by cell; `load(name)`: the bytes of a file (a same-origin
   * fetch); `open(name, bytes)`: the decoded shard, or throws naming the file (a damaged one).
   */
  constructor({ files, load, open, capacity = 64, below = randomBelow }) {
    this.files = files;
    this.load = load;
    this.open = open;
    this.capacity = Math.max(1, capacity);
    this.below = below;
    this.cache = new Map(); // cell → decoded shard, oldest first
    /** Every request made, as [recommendation number, file name], for tests and benchmarks. */
    this.requests = [];
    this.round = 0;
  }

  /** The cached shard holding item `id` and its row there, or null. */
  find(id) {
    for (const shard of this.cache.values()) {
      const r = shard.ids.indexOf(id);
      if (r >= 0) return { shard, r };
    }
    return null;
  }

  #touch(cell, shard) {
    this.cache.delete(cell);
    this.cache.set(cell, shard);
    while (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value);
  }

  /**
   * The decoded shards of `wanted` cells, fetching `total` shards in all (see above).
   * Resolves to {shards: Map cell → shard, failed: [{cell, file, error}], requested (requests
   * made), fetchedWanted (wanted cells that were not cached)}.
   */
  async get(wanted, total) {
    this.round += 1;
    const missing = wanted.filter((c) => !this.cache.has(c));
    const pool = [];
    for (let c = 0; c < this.files.length; c += 1) {
      if (!wanted.includes(c) && !this.cache.has(c)) pool.push(c);
    }
    const decoys = sample(pool, Math.max(0, total - missing.length), this.below);
    const order = sample([...missing, ...decoys], missing.length + decoys.length, this.below);
    const fetches = new Map();
    for (const c of order) {
      this.requests.push([this.round, this.files[c]]);
      fetches.set(c, this.load(this.files[c]));
    }
    for (const c of decoys) fetches.get(c).catch(() => {}); // read in full, never decoded
    const shards = new Map();
    const failed = [];
    for (const c of wanted) {
      try {
        const shard = this.cache.get(c) ?? this.open(this.files[c], await fetches.get(c));
        this.#touch(c, shard);
        shards.set(c, shard);
      } catch (err) {
        failed.push({ cell: c, file: this.files[c], error: String(err?.message ?? err) });
      }
    }
    return { shards, failed, requested: order.length, fetchedWanted: missing.length };
  }
}
