# A deliberately broken script: the negative case of `make psgrammar-check`.
# If the grammar check ever accepts this file, the check itself is broken.
function Send-Reply {
    param($Id, $Rows)
    if ($Id -gt 0) {
        $line = @{ id = $Id; rows = $Rows } | ConvertTo-Json -Compress
        [Console]::Out.WriteLine($line)
    # the closing brace of this if block is missing
}
