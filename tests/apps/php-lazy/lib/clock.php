<?php
function clock_year($seconds) {
    return gmdate('Y-m-d', $seconds) . "\n";
}
