<?php

/**
 * Worker of the framework-sized bench app for both pools (test/bench/jobs-fork.mjs): the http worker of worker.php,
 * or, with RR_MODE=jobs, a consumer that acks every job. Both boot the framework (preload.php) first.
 */

declare(strict_types=1);

require_once __DIR__ . '/preload.php';

if (getenv('RR_MODE') !== 'jobs') {
    require __DIR__ . '/worker.php';

    return;
}

require_once __DIR__ . '/../../../php/lib/rr.php';

$worker = \Rrts\Lite\Worker::create();
while ($worker->waitPayload() !== null) {
    $worker->respond('', '{"type":0,"data":{}}');
}
