/**
 * Encryption at rest for vhost-blk: AES-XTS-256 ({@code aes-xts-plain64}) over LUKS1/LUKS2 images that
 * cryptsetup and QEMU read and write.
 *
 * <p>Entry points: {@link io.vhostblk.modules.crypt.LuksVolume} (format, unlock, key slots, dump),
 * {@link io.vhostblk.modules.crypt.UnlockedVolume} (payload geometry and ciphers for the I/O hook),
 * {@link io.vhostblk.modules.crypt.XtsAes256} (the allocation-free sector cipher over MemorySegments),
 * {@link io.vhostblk.modules.crypt.Secret} (key-file bytes, wiped on close) and
 * {@link io.vhostblk.modules.crypt.CryptCommand} ({@code vhost-blk crypt ...}).
 */
package io.vhostblk.modules.crypt;
