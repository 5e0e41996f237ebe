package io.vhostblk.modules.crypt;

import io.vhostblk.hooks.ModuleCommand;

/** Offers {@link CryptCommand} to the server's command line as {@code vhost-blk crypt ...} (name and summary from its {@code @Command}). */
public final class CryptAdminCommand implements ModuleCommand {

    @Override
    public Object command() {
        return new CryptCommand();
    }
}
