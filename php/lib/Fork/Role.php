<?php

declare(strict_types=1);

namespace Rrts\Master;

/** What this php/master.php process is; it changes only on the child side of a pcntl_fork(). */
enum Role
{
    /** started by rrts with --root: forks the generation masters */
    case Root;
    /** the root's short-lived child that requires the preload to fill the shared opcache, then dies */
    case OpcacheFiller;
    /** a generation master (or a process started without --root): preloads the app and forks the workers */
    case Master;
}
