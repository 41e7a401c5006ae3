<?php

/**
 * The classes of php/master.php (the fork root, master, spares and children), one file per role in php/lib/Fork/:
 * the protocol and its channel, the root, the master, the spare, the child's own steps and its relay hand-over,
 * the start-up work done ahead (Prewarm), the fast exit and the children's output. Every one is required here,
 * before the first fork: nothing is loaded on a child's path after it. php/master.php requires this file once in a
 * short-lived child first, so the compiler's scratch pages never enter the heap the masters and workers fork from.
 */

declare(strict_types=1);

namespace Rrts\Master;

require_once __DIR__ . '/Fork/Role.php';
require_once __DIR__ . '/Fork/Protocol.php';
require_once __DIR__ . '/Fork/MsgPack.php';
require_once __DIR__ . '/Fork/Libc.php';
require_once __DIR__ . '/Fork/Channel.php';
require_once __DIR__ . '/Fork/Options.php';
require_once __DIR__ . '/Fork/ForkEnv.php';
require_once __DIR__ . '/Fork/RelayPipes.php';
require_once __DIR__ . '/Fork/Child.php';
require_once __DIR__ . '/Fork/Prewarm.php';
require_once __DIR__ . '/Fork/FastExit.php';
require_once __DIR__ . '/Fork/Output.php';
require_once __DIR__ . '/Fork/Spare.php';
require_once __DIR__ . '/Fork/Root.php';
require_once __DIR__ . '/Fork/Master.php';
