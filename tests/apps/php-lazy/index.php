<?php
// Each handler includes its code when first called, never at start.
function time_body() {
    require_once __DIR__ . '/lib/clock.php';
    return clock_year(86400 * 365);
}

function json_body($path) {
    require_once __DIR__ . '/lib/render.php';
    return render_json(['ok' => true, 'path' => $path]);
}

header('Content-Type: text/plain');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
switch ($path) {
    case '/':
        echo "hello from php\n";
        break;
    case '/time':
        echo time_body();
        break;
    case '/json':
        echo json_body($path);
        break;
    default:
        echo "not found\n";
}
