<?php

/**
 * Worker of the framework-sized bench app for both pools (test/bench/jobs-fork.mjs): the http worker of worker.php,
 * or, with RR_MODE=jobs, a consumer that runs each job through the framework (a request dispatched by the booted
 * Router, as a queued job calls into the app) and acks it. Both boot the framework (preload.php) first.
 * RRTS_BENCH_JOB_LOG (environment): a file each consumer appends its pid to per job (who consumed how many);
 * RRTS_BENCH_JOB_MS: a pause per job, as a job waiting on I/O takes, so the jobs spread over the consumers.
 */

declare(strict_types=1);

require_once __DIR__ . '/preload.php';

if (getenv('RR_MODE') !== 'jobs') {
    require __DIR__ . '/worker.php';

    return;
}

require_once __DIR__ . '/../../../php/lib/rr.php';

$worker = \Rrts\Lite\Worker::create();
$router = \RrtsBench\App::$router;
$log = (string) getenv('RRTS_BENCH_JOB_LOG');
$pauseUs = (int) getenv('RRTS_BENCH_JOB_MS') * 1000;
$done = 0;
while ($worker->waitPayload() !== null) {
    $done++;
    $router->dispatch(\Illuminate\Http\Request::create('/r' . ($done % 50) . '/' . $done, 'GET'));
    if ($pauseUs > 0) {
        usleep($pauseUs);
    }
    if ($log !== '') {
        file_put_contents($log, getmypid() . "\n", FILE_APPEND | LOCK_EX);
    }
    $worker->respond('', '{"type":0,"data":{}}');
}
