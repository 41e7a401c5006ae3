<?php

/**
 * Plain PHP hello for test/bench/hello.mjs, served by php-fpm behind nginx: the page php/worker.php prints
 * (method, absolute URI, pid), with "fpm" for "rrts" (2 bytes shorter), and a Content-Length so nginx does not
 * switch to chunked encoding. The benchmark measures the servers around it, not the page.
 */

declare(strict_types=1);

header_remove('X-Powered-By');

$method = htmlspecialchars((string) ($_SERVER['REQUEST_METHOD'] ?? 'GET'));
$scheme = (!empty($_SERVER['HTTPS']) && $_SERVER['HTTPS'] !== 'off') ? 'https' : 'http';
// RoadRunner's request context carries the absolute URL; rebuild the same one.
$uri = htmlspecialchars($scheme . '://' . ($_SERVER['HTTP_HOST'] ?? 'localhost') . ($_SERVER['REQUEST_URI'] ?? '/'));
$pid = getmypid();

$body = <<<HTML
    <!doctype html>
    <html><head><meta charset="utf-8"><title>Hello from fpm</title></head>
    <body>
    <h1>Hello from fpm</h1>
    <p>{$method} {$uri}</p>
    <p>Served by PHP worker pid {$pid}.</p>
    </body></html>

    HTML;

header('Content-Type: text/html; charset=utf-8');
header('Content-Length: ' . strlen($body));
echo $body;
