package io.vhostblk.server;

import io.vhostblk.hooks.ModuleSettings;

/**
 * One {@code [module NAME]} section of a policy: the jar and its pinned SHA-256, which devices it
 * applies to, whether it is in the chain at start, and its settings.
 *
 * @param origin where the section starts ({@code FILE:LINE}), for messages
 */
public record ModuleDeclaration(String name, String jar, String sha256, Selector selector, boolean enabled,
                                ModuleSettings settings, String origin) {
}
