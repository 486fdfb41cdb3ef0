//! The function control plane: create/get/update/delete/list, versions, aliases,
//! resource policies, reserved concurrency, event invoke configs, tags.

use crate::code;
use crate::state::{self, dec, enc, Code, Function, Version};
use crate::{conflict, err, invalid, last_modified, not_found, s, Input, Lambda, Output};
use serde_json::{json, Map, Value};
use virga_core::{AwsError, AwsResult, RequestContext, DEFAULT_ACCOUNT};
use virga_store::{KeyBuf, KvRead};

/// Account-wide concurrency, and the part AWS keeps unreserved.
pub const ACCOUNT_CONCURRENCY: i64 = 1000;
const MIN_UNRESERVED: i64 = 100;

/// Runtimes AWS no longer accepts for new or updated functions.
const DEPRECATED_RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs4.3-edge",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "java8",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "provided",
];

pub fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{name}")
}

pub fn qualified_arn(region: &str, name: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("{}:{q}", function_arn(region, name)),
        None => function_arn(region, name),
    }
}

pub fn function_not_found(region: &str, name: &str, qualifier: Option<&str>) -> AwsError {
    not_found(format!(
        "Function not found: {}",
        qualified_arn(region, name, qualifier)
    ))
}

/// (name, qualifier) of a FunctionName parameter: `name`, `name:qualifier`, a partial
/// ARN `account:function:name[:qualifier]` or a full ARN, checked against the
/// Qualifier parameter.
pub fn parse_name(raw: &str, qualifier: Option<&str>) -> AwsResult<(String, Option<String>)> {
    let p: Vec<&str> = raw.split(':').collect();
    let (name, derived) = match p.as_slice() {
        [n] => (*n, None),
        [n, q] => (*n, Some(*q)),
        [_, "function", n] => (*n, None),
        [_, "function", n, q] => (*n, Some(*q)),
        ["arn", _, "lambda", _, _, "function", n] => (*n, None),
        ["arn", _, "lambda", _, _, "function", n, q] => (*n, Some(*q)),
        _ => {
            return Err(err(
                400,
                "ValidationException",
                format!("1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"),
            ))
        }
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(err(
            400,
            "ValidationException",
            format!("1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"),
        ));
    }
    let q = match (derived, qualifier) {
        (Some(d), Some(q)) if d != q => return Err(invalid(
            "The derived qualifier from the function name does not match the specified qualifier.",
        )),
        (Some(d), _) => Some(d.to_string()),
        (None, q) => q.map(str::to_string),
    };
    Ok((name.to_string(), q))
}

/// Changes a function's record in one transaction: `change` gets the transaction
/// (for related rows) and the record, which is written back when it succeeds.
fn change_function<T>(
    l: &Lambda,
    region: &str,
    name: &str,
    change: impl FnOnce(&mut dyn virga_store::KvTxn, &mut Function) -> AwsResult<T>,
) -> AwsResult<T> {
    l.store.transact(|t| {
        let mut f = load(&*t, region, name)?;
        let out = change(&mut *t, &mut f)?;
        t.put(state::FUNCTIONS, &state::fn_key(region, name), &enc(&f)?)?;
        Ok(out)
    })
}

pub fn load(r: &dyn KvRead, region: &str, name: &str) -> AwsResult<Function> {
    r.get(state::FUNCTIONS, &state::fn_key(region, name))?
        .map(|b| dec(&b))
        .transpose()?
        .ok_or_else(|| function_not_found(region, name, None))
}

fn load_version(r: &dyn KvRead, region: &str, name: &str, v: &str) -> AwsResult<Option<Version>> {
    let Ok(n) = v.parse::<u64>() else {
        return Ok(None);
    };
    r.get(state::VERSIONS, &state::ver_key(region, name, n))?
        .map(|b| dec(&b))
        .transpose()
}

fn load_alias(
    r: &dyn KvRead,
    region: &str,
    name: &str,
    alias: &str,
) -> AwsResult<Option<Map<String, Value>>> {
    r.get(state::ALIASES, &state::alias_key(region, name, alias))?
        .map(|b| dec(&b))
        .transpose()
}

/// A function at a qualifier: what runs and what it reports.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    /// `$LATEST` or a version number.
    pub version: String,
    pub config: Map<String, Value>,
    pub code: Code,
    pub function: Function,
    /// The qualifier as given (an alias name, a version, `$LATEST`), if any.
    pub qualifier: Option<String>,
}

impl Resolved {
    /// The ARN the caller invoked (qualified as they asked).
    pub fn invoked_arn(&self, region: &str) -> String {
        qualified_arn(region, &self.name, self.qualifier.as_deref())
    }
}

/// Resolves a function and qualifier. An alias with routing weights picks a version
/// at random by weight when `route` is set (invokes); otherwise its main version.
pub fn resolve(
    l: &Lambda,
    region: &str,
    raw: &str,
    qualifier: Option<&str>,
    route: bool,
) -> AwsResult<Resolved> {
    let (name, q) = parse_name(raw, qualifier)?;
    if let ["arn", _, "lambda", arn_region, ..] = raw.split(':').collect::<Vec<_>>().as_slice() {
        if *arn_region != region {
            return Err(not_found(format!(
                "Functions from '{arn_region}' are not reachable in this region ('{region}')"
            )));
        }
    }
    l.store.read(|r| {
        let function = load(r, region, &name)?;
        let q_version = match q.as_deref() {
            None | Some("$LATEST") => "$LATEST".to_string(),
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => v.to_string(),
            Some(a) => {
                let alias = load_alias(r, region, &name, a)?
                    .ok_or_else(|| function_not_found(region, &name, Some(a)))?;
                let main = alias["FunctionVersion"]
                    .as_str()
                    .unwrap_or("$LATEST")
                    .to_string();
                if route {
                    pick_weighted(&alias, main)
                } else {
                    main
                }
            }
        };
        if q_version == "$LATEST" {
            let mut config = function.config.clone();
            if let Some(q) = q.as_deref() {
                // Asked for by qualifier, the ARN says so.
                config.insert(
                    "FunctionArn".into(),
                    json!(qualified_arn(region, &name, Some(q))),
                );
            }
            return Ok(Resolved {
                name: name.clone(),
                version: q_version,
                config,
                code: function.code.clone(),
                function,
                qualifier: q,
            });
        }
        let mut v = load_version(r, region, &name, &q_version)?
            .ok_or_else(|| function_not_found(region, &name, q.as_deref()))?;
        if let Some(a) = q
            .as_deref()
            .filter(|a| !a.bytes().all(|b| b.is_ascii_digit()))
        {
            // Seen through an alias, the configuration carries the alias ARN.
            v.config.insert(
                "FunctionArn".into(),
                json!(qualified_arn(region, &name, Some(a))),
            );
        }
        Ok(Resolved {
            name: name.clone(),
            version: q_version,
            config: v.config,
            code: v.code,
            function,
            qualifier: q,
        })
    })
}

/// The version an alias routes one invocation to.
fn pick_weighted(alias: &Map<String, Value>, main: String) -> String {
    let Some(weights) = alias
        .get("RoutingConfig")
        .and_then(|r| r.get("AdditionalVersionWeights"))
        .and_then(Value::as_object)
    else {
        return main;
    };
    let mut roll: f64 = rand::random();
    for (v, w) in weights {
        let w = w.as_f64().unwrap_or(0.0);
        if roll < w {
            return v.clone();
        }
        roll -= w;
    }
    main
}

fn validation(field: &str, value: &Value, constraint: &str) -> AwsError {
    let v = value
        .as_str()
        .map(str::to_string)
        .unwrap_or(value.to_string());
    err(
        400,
        "ValidationException",
        format!("1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: {constraint}"),
    )
}

/// Checks the configuration members shared by create and update.
fn check_config(i: &Input) -> AwsResult<()> {
    if let Some(t) = i.get("Timeout") {
        if t.as_i64().is_some_and(|t| t > 900) {
            return Err(validation(
                "timeout",
                t,
                "Member must have value less than or equal to 900",
            ));
        }
    }
    if let Some(m) = i.get("MemorySize") {
        if m.as_i64().is_some_and(|m| m > 10240) {
            return Err(validation(
                "memorySize",
                m,
                "Member must have value less than or equal to 10240",
            ));
        }
    }
    if let Some(role) = i.get("Role") {
        let ok = role.as_str().is_some_and(|r| {
            let p: Vec<&str> = r.splitn(6, ':').collect();
            p.len() == 6
                && p[0] == "arn"
                && p[2] == "iam"
                && p[4].len() == 12
                && p[4].bytes().all(|b| b.is_ascii_digit())
                && p[5].starts_with("role/")
                && p[5].len() > 5
        });
        if !ok {
            return Err(validation(
                "role",
                role,
                "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
            ));
        }
    }
    if let Some(rt) = s(i, "Runtime") {
        if DEPRECATED_RUNTIMES.contains(&rt) {
            return Err(invalid(format!("The runtime parameter of {rt} is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions.")));
        }
    }
    if let Some(env) = i.get("Environment").and_then(|e| e.get("Variables")) {
        let size = env.to_string().len();
        if size > 4096 {
            return Err(invalid(format!("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {env}")));
        }
        if let Some(m) = env.as_object() {
            for k in m.keys() {
                if RESERVED_ENV.contains(&k.as_str()) {
                    return Err(invalid(format!("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {k}")));
                }
            }
        }
    }
    if let Some(layers) = i.get("Layers").and_then(Value::as_array) {
        if layers.len() > 5 {
            return Err(invalid("Cannot reference more than 5 layers."));
        }
    }
    Ok(())
}

/// Environment variables Lambda sets and users may not.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The Layers configuration entries for layer version ARNs (each must exist).
fn layer_entries(l: &Lambda, i: &Input) -> AwsResult<Option<Value>> {
    let Some(arns) = i.get("Layers").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for a in arns {
        let arn = a.as_str().unwrap_or("");
        let layer = code::load_layer(l, arn)?;
        out.push(json!({"Arn": arn, "CodeSize": layer.code.size}));
    }
    Ok(Some(Value::Array(out)))
}

/// Whether this machine can run `runtime`: Ok(None), or Err(reason) for a Failed state.
pub fn runtime_problem(runtime: &str) -> Option<String> {
    crate::engine::runtime_command(runtime).err()
}

/// Copies the configuration members of an input into a FunctionConfiguration.
fn apply_config(l: &Lambda, c: &mut Map<String, Value>, i: &Input) -> AwsResult<()> {
    for k in [
        "Runtime",
        "Role",
        "Handler",
        "Description",
        "Timeout",
        "MemorySize",
        "TracingConfig",
        "EphemeralStorage",
        "KMSKeyArn",
    ] {
        if let Some(v) = i.get(k) {
            c.insert(k.into(), v.clone());
        }
    }
    if let Some(env) = i.get("Environment") {
        let vars = env.get("Variables").cloned().unwrap_or(json!({}));
        c.insert("Environment".into(), json!({ "Variables": vars }));
    }
    if let Some(d) = i.get("DeadLetterConfig") {
        if d.get("TargetArn")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            c.remove("DeadLetterConfig");
        } else {
            c.insert("DeadLetterConfig".into(), d.clone());
        }
    }
    if let Some(lc) = i.get("LoggingConfig").and_then(Value::as_object) {
        let mut cur = c
            .get("LoggingConfig")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in lc {
            cur.insert(k.clone(), v.clone());
        }
        if cur.get("LogFormat").and_then(Value::as_str) == Some("JSON") {
            // AWS's levels for the JSON format when none are given.
            for k in ["ApplicationLogLevel", "SystemLogLevel"] {
                cur.entry(k).or_insert_with(|| json!("INFO"));
            }
        }
        c.insert("LoggingConfig".into(), Value::Object(cur));
    }
    if let Some(layers) = layer_entries(l, i)? {
        if layers.as_array().is_some_and(|a| a.is_empty()) {
            c.remove("Layers");
        } else {
            c.insert("Layers".into(), layers);
        }
    }
    Ok(())
}

/// Sets State for the configuration's runtime (Failed with the reason when this
/// machine cannot run it).
fn set_state(c: &mut Map<String, Value>) {
    let runtime = c
        .get("Runtime")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    c.remove("StateReason");
    c.remove("StateReasonCode");
    match runtime_problem(&runtime) {
        None => {
            c.insert("State".into(), json!("Active"));
        }
        Some(reason) => {
            c.insert("State".into(), json!("Failed"));
            c.insert("StateReason".into(), json!(reason));
            c.insert("StateReasonCode".into(), json!("InvalidRuntime"));
        }
    }
    c.insert("LastUpdateStatus".into(), json!("Successful"));
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn create(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = s(i, "FunctionName").unwrap_or("");
    let (name, q) = parse_name(name, None)?;
    if q.is_some() {
        return Err(invalid(
            "Function name cannot include a qualifier when creating a function.",
        ));
    }
    if s(i, "PackageType") == Some("Image") {
        return Err(code::image_unsupported());
    }
    if s(i, "Runtime").is_none() || s(i, "Handler").is_none() {
        return Err(invalid(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ));
    }
    check_config(i)?;
    if let Some(tags) = i.get("Tags").and_then(Value::as_object) {
        check_tags(tags, tags.len())?;
    }
    // Cheap conflict check before fetching and storing the code.
    if l.store
        .read(|r| r.get(state::FUNCTIONS, &state::fn_key(region, &name)))?
        .is_some()
    {
        return Err(conflict(format!("Function already exist: {name}")));
    }
    let pkg = code::fetch(l, region, i.get("Code")).await?;
    let code = code::store(l, &pkg)?;
    let now = l.clock.now_millis();
    let mut c = Map::new();
    c.insert("FunctionName".into(), json!(name));
    c.insert("FunctionArn".into(), json!(function_arn(region, &name)));
    c.insert("Runtime".into(), json!(""));
    c.insert("Role".into(), json!(""));
    c.insert("Handler".into(), json!(""));
    c.insert("CodeSize".into(), json!(code.size));
    c.insert("Description".into(), json!(""));
    c.insert("Timeout".into(), json!(3));
    c.insert("MemorySize".into(), json!(128));
    c.insert("LastModified".into(), json!(last_modified(now)));
    c.insert("CodeSha256".into(), json!(code.sha256));
    c.insert("Version".into(), json!("$LATEST"));
    c.insert("TracingConfig".into(), json!({"Mode": "PassThrough"}));
    c.insert("PackageType".into(), json!("Zip"));
    c.insert(
        "Architectures".into(),
        i.get("Architectures").cloned().unwrap_or(json!(["x86_64"])),
    );
    c.insert("EphemeralStorage".into(), json!({"Size": 512}));
    c.insert(
        "SnapStart".into(),
        json!({"ApplyOn": "None", "OptimizationStatus": "Off"}),
    );
    c.insert(
        "LoggingConfig".into(),
        json!({"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{name}")}),
    );
    apply_config(l, &mut c, i)?;
    set_state(&mut c);
    let runtime = c["Runtime"].as_str().unwrap_or("").to_string();
    c.insert(
        "RuntimeVersionConfig".into(),
        json!({"RuntimeVersionArn": crate::engine::runtime_version_arn(region, &runtime)}),
    );
    c.insert("RevisionId".into(), json!(new_revision()));
    let f = Function {
        config: c,
        code,
        tags: i
            .get("Tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        policy: Default::default(),
        reserved: None,
        last_version: 0,
        invoke_configs: Default::default(),
    };
    let publish = i.get("Publish").and_then(Value::as_bool).unwrap_or(false);
    let out = l
        .store
        .transact(|t| {
            let key = state::fn_key(region, &name);
            if t.get(state::FUNCTIONS, &key)?.is_some() {
                return Err(conflict(format!("Function already exist: {name}")));
            }
            let mut f = f.clone();
            let out = if publish {
                // The answer names the version but keeps the unqualified ARN, as AWS does.
                let mut c = publish_in(t, region, &mut f, None)?;
                c.insert("FunctionArn".into(), json!(function_arn(region, &name)));
                c
            } else {
                f.config.clone()
            };
            t.put(state::FUNCTIONS, &key, &enc(&f)?)?;
            Ok(out)
        })
        .inspect_err(|_| {
            let _ = l.blobs.delete(&f.code.blob);
        })?;
    Ok(pending(out, "Creating"))
}

/// The configuration as CreateFunction/UpdateFunctionCode answer it: the change is
/// still being applied (`Pending` / `InProgress`), as on AWS; reads show it done.
fn pending(mut c: Output, what: &str) -> Output {
    if c.get("State").and_then(Value::as_str) == Some("Active") {
        if what == "Creating" {
            c.insert("State".into(), json!("Pending"));
            c.insert(
                "StateReason".into(),
                json!("The function is being created."),
            );
            c.insert("StateReasonCode".into(), json!("Creating"));
            c.remove("LastUpdateStatus");
        } else {
            c.insert("LastUpdateStatus".into(), json!("InProgress"));
            c.insert(
                "LastUpdateStatusReason".into(),
                json!("The function is being created."),
            );
            c.insert("LastUpdateStatusReasonCode".into(), json!("Creating"));
        }
    }
    c
}

/// Publishes `$LATEST` as a new version inside `t` (or returns the last version when
/// nothing changed since it was published, as AWS does).
fn publish_in(
    t: &mut dyn virga_store::KvTxn,
    region: &str,
    f: &mut Function,
    description: Option<&str>,
) -> AwsResult<Output> {
    let name = f.config["FunctionName"].as_str().unwrap_or("").to_string();
    if f.last_version > 0 {
        if let Some(v) = load_version(&*t, region, &name, &f.last_version.to_string())? {
            let same = v.code.sha256 == f.code.sha256
                && strip_volatile(&v.config) == strip_volatile(&f.config)
                && v.source_description.as_ref() == f.config.get("Description");
            if same {
                return Ok(v.config);
            }
        }
    }
    let n = f.last_version + 1;
    f.last_version = n;
    let mut c = f.config.clone();
    c.insert("Version".into(), json!(n.to_string()));
    c.insert(
        "FunctionArn".into(),
        json!(qualified_arn(region, &name, Some(&n.to_string()))),
    );
    if let Some(d) = description {
        c.insert("Description".into(), json!(d));
    }
    c.insert("RevisionId".into(), json!(new_revision()));
    // Publishing changes $LATEST's revision too.
    f.config.insert("RevisionId".into(), json!(new_revision()));
    let v = Version {
        config: c.clone(),
        code: f.code.clone(),
        source_description: f.config.get("Description").cloned(),
    };
    t.put(
        state::VERSIONS,
        &state::ver_key(region, &name, n),
        &enc(&v)?,
    )?;
    Ok(c)
}

/// A configuration without what differs between `$LATEST` and a version of it.
fn strip_volatile(c: &Map<String, Value>) -> Map<String, Value> {
    let mut c = c.clone();
    for k in [
        "Version",
        "FunctionArn",
        "RevisionId",
        "LastModified",
        "Description",
        "State",
        "LastUpdateStatus",
    ] {
        c.remove(k);
    }
    c
}

fn check_revision(current: &Map<String, Value>, i: &Input) -> AwsResult<()> {
    if let Some(r) = s(i, "RevisionId") {
        if current.get("RevisionId").and_then(Value::as_str) != Some(r) {
            return Err(err(
                412,
                "PreconditionFailedException",
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
            ));
        }
    }
    Ok(())
}

pub fn get(l: &Lambda, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let region = ctx.region.as_str();
    let r = resolve(
        l,
        region,
        s(i, "FunctionName").unwrap_or(""),
        s(i, "Qualifier"),
        false,
    )?;
    let mut out = Map::new();
    out.insert("Configuration".into(), Value::Object(r.config.clone()));
    out.insert(
        "Code".into(),
        json!({"RepositoryType": "S3", "Location": code::code_location(&r.code)}),
    );
    if !r.function.tags.is_empty() {
        out.insert("Tags".into(), Value::Object(r.function.tags.clone()));
    }
    if let Some(n) = r.function.reserved {
        out.insert(
            "Concurrency".into(),
            json!({"ReservedConcurrentExecutions": n}),
        );
    }
    Ok(out)
}

pub fn get_configuration(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    Ok(resolve(
        l,
        region,
        s(i, "FunctionName").unwrap_or(""),
        s(i, "Qualifier"),
        false,
    )?
    .config)
}

/// Loads `$LATEST` for a change, rejecting a qualified name.
fn unqualified(raw: &str) -> AwsResult<String> {
    let (name, q) = parse_name(raw, None)?;
    if q.is_some() {
        return Err(invalid(
            "Unsupported qualifier for this operation. Use the unqualified function name.",
        ));
    }
    Ok(name)
}

pub async fn update_code(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let current = l.store.read(|r| load(r, region, &name))?;
    check_revision(&current.config, i)?;
    if i.get("ImageUri").is_some() {
        return Err(code::image_unsupported());
    }
    let pkg = code::fetch(l, region, Some(&Value::Object(i.clone()))).await?;
    if i.get("DryRun").and_then(Value::as_bool) == Some(true) {
        let mut c = current.config.clone();
        c.insert("CodeSha256".into(), json!(pkg.sha256));
        c.insert("CodeSize".into(), json!(pkg.bytes.len()));
        return Ok(c);
    }
    let code = code::store(l, &pkg)?;
    let now = l.clock.now_millis();
    let publish = i.get("Publish").and_then(Value::as_bool).unwrap_or(false);
    let (out, old_blob) = change_function(l, region, &name, |t, f| {
        check_revision(&f.config, i)?;
        let old = std::mem::replace(&mut f.code, code.clone());
        f.config.insert("CodeSha256".into(), json!(code.sha256));
        f.config.insert("CodeSize".into(), json!(code.size));
        if let Some(a) = i.get("Architectures") {
            f.config.insert("Architectures".into(), a.clone());
        }
        f.config
            .insert("LastModified".into(), json!(last_modified(now)));
        f.config.insert("RevisionId".into(), json!(new_revision()));
        let out = if publish {
            publish_in(t, region, f, None)?
        } else {
            f.config.clone()
        };
        // The old package stays while a published version uses it.
        let in_use = version_codes(&*t, region, &name)?.contains(&old.blob);
        Ok((out, (!in_use && old.blob != code.blob).then_some(old.blob)))
    })?;
    if let Some(b) = old_blob {
        let _ = l.blobs.delete(&b);
    }
    l.engine.retire(region, &name, Some("$LATEST"));
    Ok(pending(out, "Updating"))
}

fn version_codes(r: &dyn KvRead, region: &str, name: &str) -> AwsResult<Vec<String>> {
    let prefix = KeyBuf::new().str(region).str(name).into_vec();
    state::scan_prefix(r, state::VERSIONS, &prefix, None, usize::MAX)?
        .into_iter()
        .map(|(_, v)| Ok(dec::<Version>(&v)?.code.blob))
        .collect()
}

pub fn update_configuration(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    check_config(i)?;
    let now = l.clock.now_millis();
    let out = change_function(l, region, &name, |_, f| {
        check_revision(&f.config, i)?;
        apply_config(l, &mut f.config, i)?;
        set_state(&mut f.config);
        f.config
            .insert("LastModified".into(), json!(last_modified(now)));
        f.config.insert("RevisionId".into(), json!(new_revision()));
        Ok(f.config.clone())
    })?;
    l.engine.retire(region, &name, Some("$LATEST"));
    Ok(pending(out, "Updating"))
}

pub fn delete(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let (name, q) = parse_name(s(i, "FunctionName").unwrap_or(""), s(i, "Qualifier"))?;
    match q.as_deref() {
        Some("$LATEST") => {
            return Err(invalid(
                "$LATEST version cannot be deleted without deleting the function.",
            ))
        }
        Some(v) => {
            let n: u64 = v.parse().map_err(|_| {
                invalid("Deletion of aliases is not supported. Use DeleteAlias instead.")
            })?;
            let blob = l.store.transact(|t| {
                let f = load(&*t, region, &name)?;
                let key = state::ver_key(region, &name, n);
                let ver: Version = t
                    .get(state::VERSIONS, &key)?
                    .map(|b| dec(&b))
                    .transpose()?
                    .ok_or_else(|| function_not_found(region, &name, Some(v)))?;
                let users: Vec<String> = aliases_of(&*t, region, &name)?
                    .into_iter()
                    .filter(|a| {
                        a["FunctionVersion"] == v
                            || a.get("RoutingConfig")
                                .and_then(|r| r.get("AdditionalVersionWeights"))
                                .and_then(|w| w.get(v))
                                .is_some()
                    })
                    .filter_map(|a| a["Name"].as_str().map(str::to_string))
                    .collect();
                if !users.is_empty() {
                    return Err(conflict(format!(
                        "Unable to delete version because the following aliases reference it: {users:?}"
                    )));
                }
                t.delete(state::VERSIONS, &key)?;
                let in_use = f.code.blob == ver.code.blob
                    || version_codes(&*t, region, &name)?.contains(&ver.code.blob);
                Ok((!in_use).then_some(ver.code.blob))
            })?;
            if let Some(b) = blob {
                let _ = l.blobs.delete(&b);
            }
            l.engine.retire(region, &name, Some(v));
        }
        None => {
            let blobs = l.store.transact(|t| {
                let f = load(&*t, region, &name)?;
                let mut blobs = version_codes(&*t, region, &name)?;
                blobs.push(f.code.blob);
                let prefix = KeyBuf::new().str(region).str(&name).into_vec();
                let end = virga_store::prefix_end(&prefix).unwrap_or_default();
                t.delete_range(state::VERSIONS, &prefix, &end)?;
                t.delete_range(state::ALIASES, &prefix, &end)?;
                t.delete(state::FUNCTIONS, &state::fn_key(region, &name))?;
                Ok(blobs)
            })?;
            let mut blobs = blobs;
            blobs.sort();
            blobs.dedup();
            for b in blobs {
                let _ = l.blobs.delete(&b);
            }
            l.engine.retire(region, &name, None);
            crate::esm::function_deleted(l, region, &name)?;
        }
    }
    Ok(Map::new())
}

pub fn list(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let max = i
        .get("MaxItems")
        .and_then(Value::as_u64)
        .unwrap_or(50)
        .clamp(1, 10_000) as usize;
    let marker = s(i, "Marker").map(str::to_string);
    let all_versions = s(i, "FunctionVersion") == Some("ALL");
    if s(i, "MasterRegion").is_some() {
        // MasterRegion lists Lambda@Edge replicas, which Virga never has.
        if !all_versions {
            return Err(invalid(
                "FunctionVersion must be set to ALL when MasterRegion is specified.",
            ));
        }
        let mut out = Map::new();
        out.insert("Functions".into(), json!([]));
        return Ok(out);
    }
    let prefix = KeyBuf::new().str(region).into_vec();
    let after = marker.as_deref().map(|m| state::fn_key(region, m));
    let (items, next) = l.store.read(|r| {
        let rows = state::scan_prefix(r, state::FUNCTIONS, &prefix, after.as_deref(), max + 1)?;
        let mut items = Vec::new();
        let mut next = None;
        for (n, (_, v)) in rows.into_iter().enumerate() {
            let f: Function = dec(&v)?;
            if n == max {
                break;
            }
            let name = f.config["FunctionName"].as_str().unwrap_or("").to_string();
            if all_versions {
                items.push(Value::Object(f.config.clone()));
                for (_, vb) in state::scan_prefix(
                    r,
                    state::VERSIONS,
                    &KeyBuf::new().str(region).str(&name).into_vec(),
                    None,
                    usize::MAX,
                )? {
                    items.push(Value::Object(dec::<Version>(&vb)?.config));
                }
            } else {
                items.push(Value::Object(f.config));
            }
            next = Some(name);
        }
        let more = state::scan_prefix(
            r,
            state::FUNCTIONS,
            &prefix,
            next.as_deref().map(|n| state::fn_key(region, n)).as_deref(),
            1,
        )?;
        Ok((items, if more.is_empty() { None } else { next }))
    })?;
    let mut out = Map::new();
    out.insert("Functions".into(), Value::Array(items));
    if let Some(n) = next {
        out.insert("NextMarker".into(), json!(n));
    }
    Ok(out)
}

pub fn publish_version(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    change_function(l, region, &name, |t, f| {
        check_revision(&f.config, i)?;
        if let Some(sha) = s(i, "CodeSha256") {
            if sha != f.code.sha256 {
                return Err(invalid(format!("CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.", f.code.sha256)));
            }
        }
        let out = publish_in(t, region, f, s(i, "Description"))?;
        Ok(out)
    })
}

pub fn list_versions(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let all = l.store.read(|r| {
        let mut latest = load(r, region, &name)?.config;
        // Listed versions are qualified, `$LATEST` included.
        latest.insert(
            "FunctionArn".into(),
            json!(qualified_arn(region, &name, Some("$LATEST"))),
        );
        let mut all = vec![latest];
        for (_, v) in state::scan_prefix(
            r,
            state::VERSIONS,
            &KeyBuf::new().str(region).str(&name).into_vec(),
            None,
            usize::MAX,
        )? {
            all.push(dec::<Version>(&v)?.config);
        }
        Ok(all)
    })?;
    Ok(crate::page(all, "Version", "Versions", i, 50))
}

// ---------------------------------------------------------------------------------
// Aliases
// ---------------------------------------------------------------------------------

fn aliases_of(r: &dyn KvRead, region: &str, name: &str) -> AwsResult<Vec<Map<String, Value>>> {
    state::scan_prefix(
        r,
        state::ALIASES,
        &KeyBuf::new().str(region).str(name).into_vec(),
        None,
        usize::MAX,
    )?
    .into_iter()
    .map(|(_, v)| dec(&v))
    .collect()
}

/// Checks an alias's target version and routing weights.
fn check_alias_target(
    r: &dyn KvRead,
    region: &str,
    name: &str,
    version: &str,
    routing: Option<&Value>,
) -> AwsResult<()> {
    if version != "$LATEST" && load_version(r, region, name, version)?.is_none() {
        return Err(function_not_found(region, name, Some(version)));
    }
    let Some(weights) = routing
        .and_then(|r| r.get("AdditionalVersionWeights"))
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    if weights.is_empty() {
        return Ok(());
    }
    if weights.len() > 1 {
        return Err(invalid(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    if version == "$LATEST" {
        return Err(invalid(
            "$LATEST is not supported for an alias pointing to more than 1 version",
        ));
    }
    for (v, w) in weights {
        let w = w.as_f64().unwrap_or(-1.0);
        if !(0.0..=1.0).contains(&w) {
            return Err(err(400, "ValidationException", format!("1 validation error detected: Value '{w}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]")));
        }
        if v == version {
            return Err(invalid(format!("Invalid function version {v}. Function version {v} is already included in routing configuration.")));
        }
        if load_version(r, region, name, v)?.is_none() {
            return Err(invalid(format!(
                "Invalid function version {v}. Function version {v} does not exist."
            )));
        }
    }
    Ok(())
}

pub fn create_alias(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let alias = s(i, "Name").unwrap_or("").to_string();
    if !alias.is_empty() && alias.bytes().all(|b| b.is_ascii_digit()) {
        // The model's pattern says so with a look-ahead, which the validator skips.
        return Err(err(400, "ValidationException", format!("1 validation error detected: Value '{alias}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)")));
    }
    let version = s(i, "FunctionVersion").unwrap_or("$LATEST").to_string();
    l.store.transact(|t| {
        load(&*t, region, &name)?;
        let key = state::alias_key(region, &name, &alias);
        if t.get(state::ALIASES, &key)?.is_some() {
            return Err(conflict(format!(
                "Alias already exists: {}",
                qualified_arn(region, &name, Some(&alias))
            )));
        }
        check_alias_target(&*t, region, &name, &version, i.get("RoutingConfig"))?;
        let mut a = Map::new();
        a.insert(
            "AliasArn".into(),
            json!(qualified_arn(region, &name, Some(&alias))),
        );
        a.insert("Name".into(), json!(alias));
        a.insert("FunctionVersion".into(), json!(version));
        a.insert(
            "Description".into(),
            json!(s(i, "Description").unwrap_or("")),
        );
        if let Some(rc) = i.get("RoutingConfig") {
            a.insert("RoutingConfig".into(), rc.clone());
        }
        a.insert("RevisionId".into(), json!(new_revision()));
        t.put(state::ALIASES, &key, &enc(&a)?)?;
        Ok(a)
    })
}

fn alias_not_found(region: &str, name: &str, alias: &str) -> AwsError {
    not_found(format!(
        "Cannot find alias arn: {}",
        qualified_arn(region, name, Some(alias))
    ))
}

pub fn get_alias(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let alias = s(i, "Name").unwrap_or("");
    l.store.read(|r| {
        load(r, region, &name)?;
        load_alias(r, region, &name, alias)?.ok_or_else(|| alias_not_found(region, &name, alias))
    })
}

pub fn update_alias(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let alias = s(i, "Name").unwrap_or("").to_string();
    let out = l.store.transact(|t| {
        load(&*t, region, &name)?;
        let mut a = load_alias(&*t, region, &name, &alias)?
            .ok_or_else(|| alias_not_found(region, &name, &alias))?;
        check_revision(&a, i)?;
        if let Some(v) = s(i, "FunctionVersion") {
            a.insert("FunctionVersion".into(), json!(v));
        }
        if let Some(d) = s(i, "Description") {
            a.insert("Description".into(), json!(d));
        }
        if let Some(rc) = i.get("RoutingConfig") {
            a.insert("RoutingConfig".into(), rc.clone());
        }
        let version = a["FunctionVersion"]
            .as_str()
            .unwrap_or("$LATEST")
            .to_string();
        check_alias_target(&*t, region, &name, &version, a.get("RoutingConfig"))?;
        a.insert("RevisionId".into(), json!(new_revision()));
        t.put(
            state::ALIASES,
            &state::alias_key(region, &name, &alias),
            &enc(&a)?,
        )?;
        Ok(a)
    })?;
    Ok(out)
}

pub fn delete_alias(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let alias = s(i, "Name").unwrap_or("");
    l.store.transact(|t| {
        load(&*t, region, &name)?;
        t.delete(state::ALIASES, &state::alias_key(region, &name, alias))
    })?;
    Ok(Map::new())
}

pub fn list_aliases(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let mut all = l.store.read(|r| {
        load(r, region, &name)?;
        aliases_of(r, region, &name)
    })?;
    if let Some(v) = s(i, "FunctionVersion") {
        all.retain(|a| a["FunctionVersion"] == v);
    }
    Ok(crate::page(all, "Name", "Aliases", i, 50))
}

// ---------------------------------------------------------------------------------
// Resource policy
// ---------------------------------------------------------------------------------

/// Checks that a qualifier names an existing version or alias.
fn check_qualifier(r: &dyn KvRead, region: &str, name: &str, q: Option<&str>) -> AwsResult<()> {
    match q {
        None | Some("$LATEST") => Ok(()),
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => load_version(r, region, name, v)?
            .map(|_| ())
            .ok_or_else(|| function_not_found(region, name, Some(v))),
        Some(a) => load_alias(r, region, name, a)?
            .map(|_| ())
            .ok_or_else(|| function_not_found(region, name, Some(a))),
    }
}

pub fn add_permission(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let (name, q) = parse_name(s(i, "FunctionName").unwrap_or(""), s(i, "Qualifier"))?;
    let sid = s(i, "StatementId").unwrap_or("").to_string();
    let principal = s(i, "Principal").unwrap_or("");
    let action = s(i, "Action").unwrap_or("");
    if !action.starts_with("lambda:") && action != "*" {
        return Err(err(400, "ValidationException", format!("1 validation error detected: Value '{action}' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])")));
    }
    let principal_value = if principal == "*" {
        json!("*")
    } else if principal.ends_with(".amazonaws.com") || principal.ends_with(".amazon.com") {
        json!({ "Service": principal })
    } else if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        json!({ "AWS": format!("arn:aws:iam::{principal}:root") })
    } else {
        json!({ "AWS": principal })
    };
    let mut st = Map::new();
    st.insert("Sid".into(), json!(sid));
    st.insert("Effect".into(), json!("Allow"));
    st.insert("Principal".into(), principal_value);
    st.insert("Action".into(), json!(action));
    st.insert(
        "Resource".into(),
        json!(qualified_arn(region, &name, q.as_deref())),
    );
    let mut cond = Map::new();
    if let Some(src) = s(i, "SourceArn") {
        cond.insert("ArnLike".into(), json!({ "AWS:SourceArn": src }));
    }
    if let Some(acct) = s(i, "SourceAccount") {
        cond.insert("StringEquals".into(), json!({ "AWS:SourceAccount": acct }));
    }
    if let Some(org) = s(i, "PrincipalOrgID") {
        cond.insert("StringEquals".into(), json!({ "aws:PrincipalOrgID": org }));
    }
    if let Some(t) = s(i, "EventSourceToken") {
        cond.insert(
            "StringEquals".into(),
            json!({ "lambda:EventSourceToken": t }),
        );
    }
    if let Some(t) = s(i, "FunctionUrlAuthType") {
        cond.insert(
            "StringEquals".into(),
            json!({ "lambda:FunctionUrlAuthType": t }),
        );
    }
    if !cond.is_empty() {
        st.insert("Condition".into(), Value::Object(cond));
    }
    let statement = Value::Object(st);
    change_function(l, region, &name, |t, f| {
        check_qualifier(&*t, region, &name, q.as_deref())?;
        check_revision(&f.config, i)?;
        let list = f.policy.entry(q.clone().unwrap_or_default()).or_default();
        if list.iter().any(|x| x["Sid"] == sid.as_str()) {
            return Err(conflict(format!("The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement.")));
        }
        list.push(statement.clone());
        Ok(())
    })?;
    let mut out = Map::new();
    out.insert("Statement".into(), json!(statement.to_string()));
    Ok(out)
}

pub fn remove_permission(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let (name, q) = parse_name(s(i, "FunctionName").unwrap_or(""), s(i, "Qualifier"))?;
    let sid = s(i, "StatementId").unwrap_or("");
    change_function(l, region, &name, |_, f| {
        check_revision(&f.config, i)?;
        let key = q.clone().unwrap_or_default();
        let list = f.policy.entry(key.clone()).or_default();
        let before = list.len();
        list.retain(|x| x["Sid"] != sid);
        if list.len() == before {
            return Err(not_found(format!(
                "Statement {sid} is not found in resource policy."
            )));
        }
        if list.is_empty() {
            f.policy.remove(&key);
        }
        Ok(())
    })?;
    Ok(Map::new())
}

pub fn get_policy(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let (name, q) = parse_name(s(i, "FunctionName").unwrap_or(""), s(i, "Qualifier"))?;
    let f = l.store.read(|r| {
        let f = load(r, region, &name)?;
        check_qualifier(r, region, &name, q.as_deref())?;
        Ok(f)
    })?;
    let statements = f
        .policy
        .get(&q.unwrap_or_default())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| not_found("The resource you requested does not exist."))?;
    let doc = json!({"Version": "2012-10-17", "Id": "default", "Statement": statements});
    let mut out = Map::new();
    out.insert("Policy".into(), json!(doc.to_string()));
    out.insert("RevisionId".into(), f.config["RevisionId"].clone());
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------

/// Every function of a region.
fn region_functions(r: &dyn KvRead, region: &str) -> AwsResult<Vec<Function>> {
    let prefix = KeyBuf::new().str(region).into_vec();
    state::scan_prefix(r, state::FUNCTIONS, &prefix, None, usize::MAX)?
        .into_iter()
        .map(|(_, v)| dec(&v))
        .collect()
}

fn reserved_total(r: &dyn KvRead, region: &str, except: &str) -> AwsResult<i64> {
    Ok(region_functions(r, region)?
        .iter()
        .filter(|f| f.config["FunctionName"] != except)
        .map(|f| f.reserved.unwrap_or(0))
        .sum())
}

pub fn put_concurrency(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let n = i
        .get("ReservedConcurrentExecutions")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    change_function(l, region, &name, |t, f| {
        if reserved_total(&*t, region, &name)? + n > ACCOUNT_CONCURRENCY - MIN_UNRESERVED {
            return Err(invalid(format!("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}].")));
        }
        f.reserved = Some(n);
        Ok(())
    })?;
    let mut out = Map::new();
    out.insert("ReservedConcurrentExecutions".into(), json!(n));
    Ok(out)
}

pub fn get_concurrency(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let f = l.store.read(|r| load(r, region, &name))?;
    let mut out = Map::new();
    if let Some(n) = f.reserved {
        out.insert("ReservedConcurrentExecutions".into(), json!(n));
    }
    Ok(out)
}

pub fn delete_concurrency(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    change_function(l, region, &name, |_, f| {
        f.reserved = None;
        Ok(())
    })?;
    Ok(Map::new())
}

pub fn account_settings(l: &Lambda, region: &str) -> AwsResult<Output> {
    let (count, size, reserved) = l.store.read(|r| {
        let all = region_functions(r, region)?;
        let size: i64 = all.iter().map(|f| f.code.size).sum();
        Ok((all.len(), size, reserved_total(r, region, "")?))
    })?;
    Ok(crate::obj(json!({
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800i64,
            "CodeSizeUnzipped": code::UNZIPPED_LIMIT,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": ACCOUNT_CONCURRENCY,
            "UnreservedConcurrentExecutions": ACCOUNT_CONCURRENCY - reserved,
        },
        "AccountUsage": {"TotalCodeSize": size, "FunctionCount": count},
    })))
}

// ---------------------------------------------------------------------------------
// Event invoke configs
// ---------------------------------------------------------------------------------

fn check_destination(d: &Value) -> AwsResult<()> {
    for k in ["OnSuccess", "OnFailure"] {
        if let Some(arn) = d
            .get(k)
            .and_then(|x| x.get("Destination"))
            .and_then(Value::as_str)
        {
            let service = arn.split(':').nth(2).unwrap_or("");
            if !arn.starts_with("arn:")
                || !["sqs", "sns", "lambda", "events", "s3"].contains(&service)
            {
                return Err(invalid(format!("The provided destination config DestinationConfig(OnSuccess=..., OnFailure=...) is invalid: {arn} is not a supported destination ARN.")));
            }
        }
    }
    Ok(())
}

/// Event invoke config operations name a missing function differently.
fn load_for_invoke_config(r: &dyn KvRead, region: &str, name: &str) -> AwsResult<Function> {
    load(r, region, name).map_err(|e| {
        if e.status == 404 {
            not_found("The function doesn't exist.")
        } else {
            e
        }
    })
}

pub fn put_event_invoke_config(
    l: &Lambda,
    region: &str,
    i: &Input,
    update: bool,
) -> AwsResult<Output> {
    let (name, q) = parse_name(s(i, "FunctionName").unwrap_or(""), s(i, "Qualifier"))?;
    if let Some(d) = i.get("DestinationConfig") {
        check_destination(d)?;
    }
    let now = crate::now_secs(&l.clock);
    l.store.transact(|t| {
        let mut f = load_for_invoke_config(&*t, region, &name)?;
        check_qualifier(&*t, region, &name, q.as_deref())?;
        let key = q.clone().unwrap_or_else(|| "$LATEST".into());
        let mut c = match (update, f.invoke_configs.get(&key)) {
            (true, Some(Value::Object(m))) => m.clone(),
            (true, _) => {
                return Err(not_found(format!(
                    "The function {} doesn't have an EventInvokeConfig",
                    qualified_arn(region, &name, q.as_deref())
                )))
            }
            (false, _) => Map::new(),
        };
        c.insert(
            "FunctionArn".into(),
            json!(qualified_arn(region, &name, Some(&key))),
        );
        c.insert("LastModified".into(), json!(now));
        for k in ["MaximumRetryAttempts", "MaximumEventAgeInSeconds"] {
            if let Some(v) = i.get(k) {
                c.insert(k.into(), v.clone());
            }
        }
        match i.get("DestinationConfig") {
            Some(d) => {
                let mut dc = c
                    .get("DestinationConfig")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(dm) = d.as_object() {
                    for (k, v) in dm {
                        dc.insert(k.clone(), v.clone());
                    }
                }
                c.insert("DestinationConfig".into(), Value::Object(dc));
            }
            None if !update => {
                c.insert(
                    "DestinationConfig".into(),
                    json!({"OnSuccess": {}, "OnFailure": {}}),
                );
            }
            None => {}
        }
        f.invoke_configs.insert(key, Value::Object(c.clone()));
        t.put(state::FUNCTIONS, &state::fn_key(region, &name), &enc(&f)?)?;
        Ok(c)
    })
}

pub fn get_event_invoke_config(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let (name, q) = parse_name(s(i, "FunctionName").unwrap_or(""), s(i, "Qualifier"))?;
    let f = l.store.read(|r| load(r, region, &name)).ok();
    let key = q.clone().unwrap_or_else(|| "$LATEST".into());
    match f.as_ref().and_then(|f| f.invoke_configs.get(&key)) {
        Some(Value::Object(m)) => Ok(m.clone()),
        _ => Err(not_found(format!(
            "The function {} doesn't have an EventInvokeConfig",
            qualified_arn(region, &name, Some(&key))
        ))),
    }
}

pub fn delete_event_invoke_config(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let (name, q) = parse_name(s(i, "FunctionName").unwrap_or(""), s(i, "Qualifier"))?;
    let key = q.clone().unwrap_or_else(|| "$LATEST".into());
    change_function(l, region, &name, |_, f| {
        if f.invoke_configs.remove(&key).is_none() {
            return Err(not_found(format!(
                "The function {} doesn't have an EventInvokeConfig",
                qualified_arn(region, &name, Some(&key))
            )));
        }
        Ok(())
    })?;
    Ok(Map::new())
}

pub fn list_event_invoke_configs(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = unqualified(s(i, "FunctionName").unwrap_or(""))?;
    let f = l.store.read(|r| load(r, region, &name))?;
    let mut out = Map::new();
    out.insert(
        "FunctionEventInvokeConfigs".into(),
        Value::Array(f.invoke_configs.values().cloned().collect()),
    );
    Ok(out)
}

/// The event invoke config that applies to an invocation of `r`.
pub fn invoke_config(r: &Resolved) -> Option<Map<String, Value>> {
    let key = r.qualifier.clone().unwrap_or_else(|| "$LATEST".into());
    r.function
        .invoke_configs
        .get(&key)
        .and_then(Value::as_object)
        .cloned()
}

// ---------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------

/// AWS's tag rules: at most 50 on a resource (`total`), keys of 1 to 128 characters
/// outside the reserved `aws:` prefix, values of at most 256.
fn check_tags(tags: &Map<String, Value>, total: usize) -> AwsResult<()> {
    if total > 50 {
        return Err(invalid("Number of tags exceeds resource tag limit."));
    }
    for (k, v) in tags {
        let len = k.chars().count();
        if len == 0 || len > 128 {
            return Err(invalid(format!(
                "Tag key must be between 1 and 128 characters: {k}"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!(
                "Tag keys starting with 'aws:' are reserved for AWS use: {k}"
            )));
        }
        if v.as_str().is_some_and(|v| v.chars().count() > 256) {
            return Err(invalid(format!(
                "Tag value must be at most 256 characters, for key {k}"
            )));
        }
    }
    Ok(())
}

fn tagged_function(resource: &str) -> AwsResult<(String, String)> {
    let p: Vec<&str> = resource.split(':').collect();
    match p.as_slice() {
        ["arn", _, "lambda", region, _, "function", name] => Ok((region.to_string(), name.to_string())),
        ["arn", _, "lambda", _, _, "function", _, _] => Err(invalid(
            "Tags on function aliases and versions are not supported. Please specify a function ARN.",
        )),
        _ => Err(err(400, "ValidationException", format!("1 validation error detected: Value '{resource}' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|layer:[a-zA-Z0-9-_]+|code-signing-config:csc-[a-z0-9]{{17}}|event-source-mapping:[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}})"))),
    }
}

pub fn tag(l: &Lambda, _region: &str, i: &Input) -> AwsResult<Output> {
    let (region, name) = tagged_function(s(i, "Resource").unwrap_or(""))?;
    change_function(l, &region, &name, |_, f| {
        if let Some(tags) = i.get("Tags").and_then(Value::as_object) {
            for (k, v) in tags {
                f.tags.insert(k.clone(), v.clone());
            }
            check_tags(tags, f.tags.len())?;
        }
        Ok(())
    })?;
    Ok(Map::new())
}

pub fn untag(l: &Lambda, _region: &str, i: &Input) -> AwsResult<Output> {
    let (region, name) = tagged_function(s(i, "Resource").unwrap_or(""))?;
    let keys = virga_protocol::string_list(i, "TagKeys");
    change_function(l, &region, &name, |_, f| {
        for k in &keys {
            f.tags.remove(k);
        }
        Ok(())
    })?;
    Ok(Map::new())
}

pub fn list_tags(l: &Lambda, _region: &str, i: &Input) -> AwsResult<Output> {
    let (region, name) = tagged_function(s(i, "Resource").unwrap_or(""))?;
    let f = l.store.read(|r| load(r, &region, &name))?;
    let mut out = Map::new();
    out.insert("Tags".into(), Value::Object(f.tags));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert_eq!(parse_name("f", None).unwrap(), ("f".into(), None));
        assert_eq!(
            parse_name("f:live", None).unwrap(),
            ("f".into(), Some("live".into()))
        );
        assert_eq!(
            parse_name("arn:aws:lambda:us-east-1:000000000000:function:f:3", None).unwrap(),
            ("f".into(), Some("3".into()))
        );
        assert_eq!(
            parse_name("000000000000:function:f", Some("$LATEST")).unwrap(),
            ("f".into(), Some("$LATEST".into()))
        );
        assert_eq!(
            parse_name("f:1", Some("2")).unwrap_err().code,
            "InvalidParameterValueException"
        );
        assert_eq!(
            parse_name("bad name", None).unwrap_err().code,
            "ValidationException"
        );
        assert_eq!(
            parse_name("a:b:c:d:e", None).unwrap_err().code,
            "ValidationException"
        );
    }

    #[test]
    fn weighted_alias_routing() {
        let a: Map<String, Value> = crate::obj(json!({
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.3}}
        }));
        let n = 4000;
        let twos = (0..n)
            .filter(|_| pick_weighted(&a, "1".into()) == "2")
            .count();
        let share = twos as f64 / n as f64;
        assert!((0.25..0.35).contains(&share), "{share}");
        let plain = crate::obj(json!({"FunctionVersion": "1"}));
        assert_eq!(pick_weighted(&plain, "1".into()), "1");
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    fn check(v: Value) -> Option<String> {
        check_config(&crate::obj(v)).err().map(|e| e.code)
    }

    #[test]
    fn configuration_limits() {
        assert_eq!(check(json!({"Timeout": 900, "MemorySize": 10240})), None);
        assert_eq!(
            check(json!({"Timeout": 901})).as_deref(),
            Some("ValidationException")
        );
        assert_eq!(
            check(json!({"MemorySize": 10241})).as_deref(),
            Some("ValidationException")
        );
        assert_eq!(
            check(json!({"Role": "arn:aws:iam::000000000000:role/r"})),
            None
        );
        assert_eq!(
            check(json!({"Role": "arn:aws:iam::000000000000:user/u"})).as_deref(),
            Some("ValidationException")
        );
        assert_eq!(
            check(json!({"Role": "r"})).as_deref(),
            Some("ValidationException")
        );
        assert_eq!(
            check(json!({"Runtime": "python2.7"})).as_deref(),
            Some("InvalidParameterValueException")
        );
        assert_eq!(
            check(json!({"Environment": {"Variables": {"AWS_REGION": "x"}}})).as_deref(),
            Some("InvalidParameterValueException")
        );
        let big: Map<String, Value> = (0..200)
            .map(|i| (format!("K{i}"), json!("v".repeat(20))))
            .collect();
        assert_eq!(
            check(json!({"Environment": {"Variables": big}})).as_deref(),
            Some("InvalidParameterValueException")
        );
        assert_eq!(
            check(json!({"Layers": ["a", "b", "c", "d", "e", "f"]})).as_deref(),
            Some("InvalidParameterValueException")
        );
    }
}
