/**
 * Data reduction for vhost-blk: a self-contained, crash-consistent volume with deduplication and compression
 * ({@link io.vhostblk.modules.reduce.ReduceVolume}), the backing-store interface it writes through, and the
 * offline {@code vhost-blk reduce} tools. The design is in {@code docs/reduce.md}.
 */
package io.vhostblk.modules.reduce;
