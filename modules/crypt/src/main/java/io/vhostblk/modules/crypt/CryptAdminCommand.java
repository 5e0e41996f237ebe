package io.vhostblk.modules.crypt;

import io.vhostblk.hooks.ModuleCommand;

/** Offers {@link CryptCommand} to the server's command line as {@code vhost-blk crypt ...}. */
public final class CryptAdminCommand implements ModuleCommand {

    @Override
    public String name() {
        return "crypt";
    }

    @Override
    public String summary() {
        return "format LUKS images, manage their key slots, dump their headers";
    }

    @Override
    public Object command() {
        return new CryptCommand();
    }
}
