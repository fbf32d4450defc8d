# bootstrap.ps1 - the one fixed script hybridflow's PowerShell host runs.
#
# The Go client (internal/exchange/shell) starts Windows PowerShell 5.1 or
# PowerShell 7 with this file and then talks to it over stdin/stdout, one
# JSON document per line, UTF-8:
#
#   in,  first line  {"config":{"mode":"remote","connectionUri":"https://ex01.contoso.com/PowerShell/"}}
#   out, first line  {"ready":true,"version":1,"session":"..."}
#                    {"ready":false,"version":1,"error":{"type":"...","message":"...","category":"..."}}
#   in               {"id":7,"cmdlet":"Get-AuthServer","parameters":{"Identity":"evoSTS"}}
#   out              {"id":7,"rows":[{...}],"error":null}
#   in               {"id":8,"batch":[{"cmdlet":"...","parameters":{...}},...]}
#   out              {"id":8,"results":[{"rows":[...],"error":null},...]}
#   in,  end         the client closes stdin: the script leaves, removing
#                    a remote session first
#
# The client closes stdin also to give up on a call that took too long. A
# remote session's command runs as a job, so the script keeps watching
# stdin meanwhile: it stops the command, writes no reply and leaves
# through the same finally, so the session does not stay behind on the
# Exchange server (a killed host's session stays until it expires). A
# local command runs in the script's own thread and cannot be watched;
# the client kills the host after a grace period instead, which leaves
# nothing behind on a server.
#
# Security model: cmdlet names must be on the allow-list below, and
# parameter values are data. They are bound by splatting a hashtable
# (& $command @params); no request text is ever turned into script text, so
# a value such as "x'; Remove-Item C:\ -Recurse; '" stays a string.
#
# Kept to constructs Windows PowerShell 5.1 understands: the Exchange
# snap-in and the Lync module load only there.

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
# Nobody can answer a prompt or read progress bars: stdin and stdout carry
# the protocol. Warnings and verbose text would only add noise lines that
# the client has to skip.
$ConfirmPreference = 'None'
$ProgressPreference = 'SilentlyContinue'
$WarningPreference = 'SilentlyContinue'
$VerbosePreference = 'SilentlyContinue'
$InformationPreference = 'SilentlyContinue'

$ProtocolVersion = 1

# BEGIN ALLOWLIST - must equal exchange.AllowedCmdlets (a Go test compares them).
$AllowedCmdlets = @(
    'Get-AuthServer', 'New-AuthServer', 'Set-AuthServer', 'Remove-AuthServer',
    'Get-PartnerApplication', 'Set-PartnerApplication',
    'Get-AuthConfig', 'Set-AuthConfig',
    'Get-ExchangeCertificate', 'New-ExchangeCertificate',
    'Get-IntraOrganizationConnector', 'New-IntraOrganizationConnector', 'Set-IntraOrganizationConnector', 'Remove-IntraOrganizationConnector',
    'Get-AvailabilityAddressSpace', 'Add-AvailabilityAddressSpace', 'Remove-AvailabilityAddressSpace',
    'Get-AcceptedDomain', 'Get-WebServicesVirtualDirectory', 'Get-MapiVirtualDirectory', 'Get-OABVirtualDirectory', 'Get-AutodiscoverVirtualDirectory',
    'Get-ExchangeServer', 'Get-OrganizationConfig', 'Get-IntraOrganizationConfiguration',
    'Get-SettingOverride', 'New-SettingOverride', 'Remove-SettingOverride', 'Get-ExchangeDiagnosticInfo',
    'Get-Mailbox',
    'Test-OAuthConnectivity',
    'Get-CsAccessEdgeConfiguration', 'Set-CsAccessEdgeConfiguration',
    'Get-CsHostingProvider', 'New-CsHostingProvider', 'Set-CsHostingProvider', 'Remove-CsHostingProvider',
    'Get-CsManagementStoreReplicationStatus', 'Get-CsExternalAccessPolicy'
)
# END ALLOWLIST

# Windows PowerShell 5.1 serialises arrays that carry its extended Count
# property as {"value":[...],"Count":n}; dropping that type data restores
# plain JSON arrays.
if ($PSVersionTable.PSVersion.Major -lt 6) {
    Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
}

# PowerShell 7 would turn ISO-8601 strings into DateTime values while
# parsing, so a -Name that happens to look like a date would change; 7.5+
# can be told not to. Older versions leave strings alone anyway.
$JsonReadOptions = @{}
if ($PSVersionTable.PSVersion -ge [version]'7.5') {
    $JsonReadOptions['DateKind'] = 'String'
}

# Own UTF-8 reader and writer instead of the console's: the console code
# page differs between machines and must not decide how a domain name with
# non-ASCII characters travels.
$Utf8 = New-Object System.Text.UTF8Encoding($false)
$In = New-Object System.IO.StreamReader([Console]::OpenStandardInput(), $Utf8)
$Out = New-Object System.IO.StreamWriter([Console]::OpenStandardOutput(), $Utf8)
$Out.NewLine = "`n"
$Out.AutoFlush = $true

$RemoteSession = $null
# The next input line, read ahead (a pending ReadLineAsync) so that the end
# of input can be noticed while a remote command runs.
$NextLine = $null
# Set once the client has given up on a call: no reply, leave.
$Leaving = $false

function Write-Message($Message) {
    $Out.WriteLine((ConvertTo-Json -InputObject $Message -Depth 6 -Compress))
}

# Get-Field reads an optional JSON property; strict mode would throw on a
# property the client left out.
function Get-Field($Object, [string]$Name) {
    if ($null -eq $Object) { return $null }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return $property.Value
}

# ConvertFrom-WireValue turns parsed JSON into what cmdlets bind: objects
# become hashtables, arrays stay arrays (the leading comma stops PowerShell
# from unrolling them on return), everything else is passed unchanged.
function ConvertFrom-WireValue($Value) {
    if ($null -eq $Value) { return $null }
    if ($Value -is [System.Management.Automation.PSCustomObject]) {
        $table = @{}
        foreach ($property in $Value.PSObject.Properties) {
            $table[$property.Name] = ConvertFrom-WireValue $property.Value
        }
        return $table
    }
    if ($Value -is [array]) {
        return , @(foreach ($item in $Value) { ConvertFrom-WireValue $item })
    }
    return $Value
}

# ConvertTo-WireValue turns cmdlet output into plain data that renders the
# same on 5.1 and 7: DateTime as ISO-8601 UTC, byte arrays as base64, enums
# and other rich values as the text the Exchange shell prints for them.
# Depth 0 is an output object (a row), depth 1 its property values; deeper
# values are flattened to text so that replies stay small and shallow.
function ConvertTo-WireValue($Value, [int]$Depth) {
    if ($null -eq $Value) { return $null }
    $base = $Value.PSObject.BaseObject
    if ($base -is [string]) { $plain = $base }
    elseif ($base -is [datetime]) { $plain = $base.ToUniversalTime().ToString('o', [System.Globalization.CultureInfo]::InvariantCulture) }
    elseif ($base -is [datetimeoffset]) { $plain = $base.UtcDateTime.ToString('o', [System.Globalization.CultureInfo]::InvariantCulture) }
    elseif ($base -is [byte[]]) { $plain = [Convert]::ToBase64String($base) }
    elseif ($base -is [enum] -or $base -is [char]) { $plain = $base.ToString() }
    elseif ($base -is [bool] -or $base -is [decimal] -or ($base -is [ValueType] -and $base.GetType().IsPrimitive)) { $plain = $base }
    elseif ($base -is [ValueType] -or $Depth -ge 2) { $plain = $Value.ToString() }
    elseif ($base -is [System.Collections.IDictionary]) {
        $table = [ordered]@{}
        foreach ($key in $base.Keys) { $table[[string]$key] = ConvertTo-WireValue $base[$key] ($Depth + 1) }
        return $table
    }
    elseif ($base -is [System.Collections.IEnumerable]) {
        return , @(foreach ($item in $base) { ConvertTo-WireValue $item ($Depth + 1) })
    }
    elseif ($Depth -ge 1) { $plain = $Value.ToString() }
    else {
        $row = [ordered]@{}
        foreach ($property in $Value.PSObject.Properties) {
            # Some Exchange property getters throw (a value that cannot be
            # read on this server); one bad property must not lose the row.
            try { $row[$property.Name] = ConvertTo-WireValue $property.Value 1 }
            catch { $row[$property.Name] = $null }
        }
        return $row
    }
    # A row must be an object on the wire, even when a command emits a bare value.
    if ($Depth -eq 0) { return [ordered]@{ Value = $plain } }
    return $plain
}

function ConvertTo-WireError($Record) {
    $exception = $Record.Exception
    $type = $exception.GetType().FullName
    # Through a remote session every failure arrives as a RemoteException;
    # the original .NET type survives only in the serialised copy's type
    # names ("Deserialized.<type>") or, shortened, in CategoryInfo.Reason.
    if ($exception -is [System.Management.Automation.RemoteException]) {
        $serialized = $exception.SerializedRemoteException
        if ($null -ne $serialized -and $serialized.PSObject.TypeNames.Count -gt 0) {
            $type = ([string]$serialized.PSObject.TypeNames[0]) -replace '^Deserialized\.', ''
        }
        elseif ($Record.CategoryInfo.Reason) {
            $type = [string]$Record.CategoryInfo.Reason
        }
    }
    return [ordered]@{
        type     = $type
        message  = $exception.Message
        category = $Record.CategoryInfo.Category.ToString()
    }
}

# Test-InputEnded reports whether the client has closed stdin (or it
# failed) while a command runs.
function Test-InputEnded {
    if (-not $NextLine.IsCompleted) { return $false }
    if ($NextLine.Status -ne [System.Threading.Tasks.TaskStatus]::RanToCompletion) { return $true }
    return ($null -eq $NextLine.Result)
}

# Receive-RemoteJob waits for a remote command started with -AsJob and
# returns its rows; when stdin ends first it stops the command and marks
# the script as leaving.
function Receive-RemoteJob($Job) {
    try {
        while (-not $Job.Finished.WaitOne(200)) {
            if (Test-InputEnded) {
                $script:Leaving = $true
                Stop-Job -Job $Job -ErrorAction SilentlyContinue
                return New-Failure 'System.Management.Automation.PipelineStoppedException' 'The command was stopped: the client closed the host.' 'OperationStopped'
            }
        }
        $rows = @(Receive-Job -Job $Job -ErrorAction Stop | ForEach-Object { ConvertTo-WireValue $_ 0 })
        return [ordered]@{ rows = $rows; error = $null }
    }
    finally {
        Remove-Job -Job $Job -Force -ErrorAction SilentlyContinue
    }
}

function New-Failure([string]$Type, [string]$Message, [string]$Category) {
    return [ordered]@{ rows = @(); error = [ordered]@{ type = $Type; message = $Message; category = $Category } }
}

# Invoke-Allowed runs one {cmdlet, parameters} request and returns
# {rows, error}; a failing command never stops the loop.
function Invoke-Allowed($Request) {
    $name = [string](Get-Field $Request 'cmdlet')
    if (-not ($AllowedCmdlets -contains $name)) {
        return New-Failure 'HybridFlow.CmdletNotAllowedException' ("The term '{0}' is not allowed by the host." -f $name) 'PermissionDenied'
    }
    try {
        # Resolve to the command object first, so '&' below can only ever
        # run this allow-listed cmdlet or the function Import-PSSession
        # made for it, never a path or an alias.
        $command = Get-Command -Name $name -CommandType @('Cmdlet', 'Function') | Select-Object -First 1
        if ($null -eq $command) {
            return New-Failure 'System.Management.Automation.CommandNotFoundException' ("The term '{0}' is not recognized as the name of a cmdlet." -f $name) 'ObjectNotFound'
        }
        $params = @{}
        $wireParams = Get-Field $Request 'parameters'
        if ($null -ne $wireParams) {
            foreach ($property in $wireParams.PSObject.Properties) {
                $params[$property.Name] = ConvertFrom-WireValue $property.Value
            }
        }
        # Every failure must reach the catch below with its real type, and
        # Remove-/Set- cmdlets must not wait for a confirmation nobody gives.
        $params['ErrorAction'] = 'Stop'
        if ($command.Parameters.ContainsKey('Confirm') -and -not $params.ContainsKey('Confirm')) {
            $params['Confirm'] = $false
        }
        # Every command Import-PSSession makes takes -AsJob: in a remote
        # session the command runs as a job, watched by Receive-RemoteJob.
        $asJob = ($null -ne $RemoteSession) -and $command.Parameters.ContainsKey('AsJob')
        if ($asJob) {
            $params['AsJob'] = $true
            return Receive-RemoteJob (& $command @params)
        }
        $rows = @(& $command @params | ForEach-Object { ConvertTo-WireValue $_ 0 })
        return [ordered]@{ rows = $rows; error = $null }
    }
    catch {
        return [ordered]@{ rows = @(); error = (ConvertTo-WireError $_) }
    }
}

function Initialize-Session($Config) {
    $mode = [string](Get-Field $Config 'mode')
    switch ($mode) {
        'none' { }
        'local-snapin' {
            Add-PSSnapin -Name 'Microsoft.Exchange.Management.PowerShell.SnapIn'
        }
        'remote' {
            $uri = [uri][string](Get-Field $Config 'connectionUri')
            if (-not $uri.IsAbsoluteUri) { throw 'remote mode needs an absolute connectionUri' }
            $script:RemoteSession = New-PSSession -ConfigurationName 'Microsoft.Exchange' -ConnectionUri $uri -Authentication Kerberos
            # Import only the allow-listed commands: the local session then
            # cannot even name anything else the remote endpoint offers.
            Import-PSSession -Session $script:RemoteSession -CommandName $AllowedCmdlets -DisableNameChecking -AllowClobber | Out-Null
        }
        'lync' { Import-Module -Name 'Lync' }
        'skype' { Import-Module -Name 'SkypeForBusiness' }
        default { throw ("unknown session mode '{0}'" -f $mode) }
    }
}

try {
    $configLine = $In.ReadLine()
    if ($null -eq $configLine) { exit 0 }
    Initialize-Session (Get-Field (ConvertFrom-Json -InputObject $configLine) 'config')
}
catch {
    Write-Message ([ordered]@{ ready = $false; version = $ProtocolVersion; error = (ConvertTo-WireError $_) })
    # New-PSSession may have worked before Import-PSSession failed: leave
    # no session behind.
    if ($null -ne $RemoteSession) {
        Remove-PSSession -Session $RemoteSession -ErrorAction SilentlyContinue
    }
    exit 1
}

$sessionId = '{0}-{1}' -f $PID, [guid]::NewGuid().ToString('N')
Write-Message ([ordered]@{ ready = $true; version = $ProtocolVersion; session = $sessionId })

try {
    $NextLine = $In.ReadLineAsync()
    while ($true) {
        $line = $NextLine.GetAwaiter().GetResult()
        # End of input is the client's way of saying goodbye.
        if ($null -eq $line) { break }
        $NextLine = $In.ReadLineAsync()
        if ($line.Trim().Length -eq 0) { continue }
        $id = 0
        try {
            $request = ConvertFrom-Json -InputObject $line @JsonReadOptions
            $id = Get-Field $request 'id'
            $batch = Get-Field $request 'batch'
            if ($null -ne $batch) {
                $results = @(foreach ($item in $batch) {
                        if ($Leaving) { break }
                        Invoke-Allowed $item
                    })
                $reply = [ordered]@{ id = $id; results = $results }
            }
            else {
                $result = Invoke-Allowed $request
                $reply = [ordered]@{ id = $id; rows = $result.rows; error = $result.error }
            }
        }
        catch {
            $reply = [ordered]@{ id = $id; rows = @(); error = (ConvertTo-WireError $_) }
        }
        # The client gave up on this call and closed stdin: nobody reads a
        # reply any more.
        if ($Leaving) { break }
        Write-Message $reply
    }
}
finally {
    # Exchange limits concurrent remote sessions per account; leave none behind.
    if ($null -ne $RemoteSession) {
        Remove-PSSession -Session $RemoteSession -ErrorAction SilentlyContinue
    }
}
