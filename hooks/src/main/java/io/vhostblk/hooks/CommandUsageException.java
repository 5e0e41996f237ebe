package io.vhostblk.hooks;

/**
 * A command line that cannot be acted on; the message names the option and the value at fault.
 * {@link CommandKit} reports it with the command's name and exits with the command's usage status.
 */
public class CommandUsageException extends Exception {
    public CommandUsageException(String message) {
        super(message);
    }
}
