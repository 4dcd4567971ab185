//! The person API of kvs's first users: `PUT /person/update` and `GET /person/get`. A person is an
//! ordinary key, `person/{id}`, holding `{"Name":…,"UpdatedAt":…}` as `application/json`, so it is
//! also readable at `/kvs/person/{id}`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kvs_store::{Command, Get, Reply, Set};
use serde_json::Value;

use super::auth::Caller;
use super::conditions::rfc3339;
use super::error::ApiError;
use super::keys::unexpected;
use super::{AppState, body, query};
use crate::engine::now_millis;

const JSON: &str = "application/json";

pub(crate) async fn update(State(state): State<AppState>, request: Request) -> Response {
    if !matches!(*request.method(), Method::PUT | Method::POST) {
        return ApiError::method_not_allowed("PUT, POST").into_response();
    }
    let caller = request.extensions().get::<Caller>().cloned();
    let (parts, body) = request.into_parts();
    let result = async {
        let bytes = body::read(&parts.headers, body, &state.limits).await?;
        let doc = parse_json(&bytes)?;
        let id = id_of(&doc)?;
        if let Some(caller) = &caller
            && let Some(refusal) = caller.refusal(&state.acl, &[b"set", key(id).as_bytes(), b""])
        {
            return Ok(refusal);
        }
        let name = match doc.get("name").or_else(|| doc.get("Name")) {
            Some(Value::String(name)) => name.clone(),
            _ => return Err(ApiError::bad_request("name must be a string")),
        };
        let record = serde_json::json!({ "Name": name, "UpdatedAt": rfc3339(now_millis()) });
        let stored = Bytes::from(record.to_string());
        let set = Set::new(key(id), stored.clone()).content_type(JSON);
        match state.engine.execute(Command::Set(set)).await {
            Reply::Stored { .. } => Ok(json_response(StatusCode::OK, stored)),
            other => Err(unexpected(&other)),
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn get(State(state): State<AppState>, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    let caller = request.extensions().get::<Caller>().cloned();
    let (parts, body) = request.into_parts();
    let result = async {
        let id = match query::text_param(&parts.uri, "id") {
            Some(text) => parse_id(&text)?,
            None => {
                let bytes = body::read(&parts.headers, body, &state.limits).await?;
                if bytes.is_empty() {
                    return Err(ApiError::bad_request(
                        "name the person with ?id= or a JSON body {\"id\":…}",
                    ));
                }
                id_of(&parse_json(&bytes)?)?
            }
        };
        if let Some(caller) = &caller
            && let Some(refusal) = caller.refusal(&state.acl, &[b"get", key(id).as_bytes()])
        {
            return Ok(refusal);
        }
        match state.engine.execute(Command::Get(Get::new(key(id)))).await {
            Reply::Value(entry) => match entry.value {
                kvs_store::Value::String(bytes) => Ok(json_response(StatusCode::OK, bytes)),
                kvs_store::Value::Collection(_) => {
                    Err(ApiError::not_found(format!("no person with id {id}")))
                }
            },
            Reply::NotFound => Err(ApiError::not_found(format!("no person with id {id}"))),
            other => Err(unexpected(&other)),
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn key(id: i64) -> String {
    format!("person/{id}")
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::bad_request("id must be a whole number"))
}

fn id_of(doc: &Value) -> Result<i64, ApiError> {
    match doc
        .get("id")
        .or_else(|| doc.get("Id"))
        .or_else(|| doc.get("ID"))
    {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("id must be a whole number")),
        Some(Value::String(s)) => parse_id(s),
        _ => Err(ApiError::bad_request(
            "id is required and must be a whole number",
        )),
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}
