<?php
function sorted($value) {
    ksort($value);
    return $value;
}
