<?php
require_once 'helpers.php';

function render_json($value) {
    return json_encode(sorted($value)) . "\n";
}
