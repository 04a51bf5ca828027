//! Every check on what the user wrote. All errors are collected; each is spanned at the token to change and says
//! what to write instead. A model that passes becomes a [`ModelPlan`].

use std::collections::BTreeSet;

use syn::{LitStr, Type};

use crate::ast::{Field, Model};
use crate::errors::Errors;
use crate::naming::{self, CaseStyle};
use crate::plan::{Fallback, IdSource, ModelPlan, PlanField, RelationsPlan, TemplatePiece};
use crate::relation::{self, Relation, RelationKind};
use crate::template::{self, Piece};

const ID: &str = "id";
const SOURCE_ID: &str = "_morango_source_id";
const PARTITION: &str = "_morango_partition";
const DIRTY_BIT: &str = "_morango_dirty_bit";

/// The record id and the bookkeeping fields.
const BOOKKEEPING_NAMES: [&str; 4] = [ID, SOURCE_ID, PARTITION, DIRTY_BIT];

/// The bookkeeping fields with their type.
const BOOKKEEPING: [(&str, &str); 3] = [(SOURCE_ID, "String"), (PARTITION, "String"), (DIRTY_BIT, "bool")];

/// The same wording as `morango::__private::graph::SELF_REF_FIX`.
const SELF_REF_FIX: &str = "Morango orders the records of a tree by one parent link: keep one self-referential \
     foreign key and store the other reference in a plain column that is not a relation";

/// Checks a `Model`; `Err` carries what is needed to emit the fallback impls.
pub fn model<'a>(input: Model<'a>, errors: &mut Errors) -> Result<ModelPlan<'a>, Fallback<'a>> {
    let fallback = Fallback { model: input.ident, custom_behavior: input.attrs.custom_behavior.is_some() };
    model_keys(&input, errors);
    id_field(&input, errors);
    bookkeeping_fields(&input, errors);
    field_attributes(&input, errors);
    generic_foreign_keys(&input, errors);
    let partition =
        id_source(&input, "partition", input.attrs.partition.as_ref(), input.attrs.partition_fn.as_ref(), errors);
    let source_id =
        id_source(&input, "source_id", input.attrs.source_id.as_ref(), input.attrs.source_id_fn.as_ref(), errors);

    let field = |name: &str| input.fields.iter().find(|f| f.name == name).map(|f| f.ident);
    let (Some(model_name), Some(profile), Some(partition), Some(id), Some(source), Some(part), Some(dirty_bit)) = (
        input.attrs.model_name.clone(),
        input.attrs.profile.clone(),
        partition.flatten(),
        field(ID),
        field(SOURCE_ID),
        field(PARTITION),
        field(DIRTY_BIT),
    ) else {
        return Err(fallback);
    };
    if !errors.is_empty() {
        return Err(fallback);
    }

    let rename_all = input.sea.rename_all.as_ref().and_then(|(style, _)| *style);
    let plan_field = |f: &Field<'a>| PlanField {
        ident: f.ident,
        key: f.name.clone(),
        column: naming::column_name(&f.name, f.sea.column_name.as_ref().map(LitStr::value), rename_all),
        ty: f.ty,
        default: f.attrs.default.clone(),
        with: f.attrs.with.clone(),
    };
    let columns = || input.fields.iter().filter(|f| f.sea.ignore.is_none());
    let mut synced = Vec::new();
    for name in [ID, SOURCE_ID, PARTITION] {
        synced.extend(columns().filter(|f| f.name == name).map(plan_field));
    }
    synced.extend(columns().filter(|f| is_plain(f) && f.attrs.local.is_none()).map(plan_field));
    let local = columns().filter(|f| is_plain(f) && f.attrs.local.is_some()).map(plan_field).collect();
    let discriminator = match &input.attrs.discriminator {
        None => None,
        Some((ident, value)) => {
            let name = ident.to_string();
            match synced.iter().find(|f: &&PlanField<'_>| f.key == name && !BOOKKEEPING_NAMES.contains(&f.key.as_str()))
            {
                Some(field) => Some((field.key.clone(), field.column.clone(), value.clone())),
                None => {
                    errors.spanned(
                        ident,
                        format!(
                            "`discriminator` names `{name}`, which is not a synced field of this model: name the field \
                             whose value tells this model's rows from the other models' in the same table"
                        ),
                    );
                    return Err(fallback);
                }
            }
        }
    };

    Ok(ModelPlan {
        model: input.ident,
        model_name,
        profile,
        table: input.sea.table_name.clone().unwrap_or_default(),
        partition,
        source_id: source_id.flatten(),
        id_fn: input.attrs.id_fn.clone(),
        on_conflict: input.attrs.on_conflict.clone(),
        depends_on: input.attrs.depends_on.clone(),
        discriminator,
        synced,
        local,
        bookkeeping: [id, source, part],
        dirty_bit,
        custom_behavior: input.attrs.custom_behavior.is_some(),
    })
}

/// Checks the relations of one entity: at most one self-referential foreign key.
pub fn relations(relations: Vec<Relation>, errors: &mut Errors) -> RelationsPlan {
    let mut first: Option<&str> = None;
    for relation in &relations {
        if let RelationKind::SelfRef(span) = relation.kind {
            match first {
                None => first = Some(&relation.name),
                Some(first) => errors.at(
                    span,
                    format!(
                        "`{}` is a second self-referential foreign key (the first is `{first}`); {SELF_REF_FIX}",
                        relation.name
                    ),
                ),
            }
        }
    }
    RelationsPlan { relations }
}

/// A field that is neither `id` nor a bookkeeping field.
fn is_plain(field: &Field<'_>) -> bool {
    field.name != ID && !BOOKKEEPING.iter().any(|(name, _)| *name == field.name)
}

/// The model-level keys: required ones present, no contradictions.
fn model_keys(input: &Model<'_>, errors: &mut Errors) {
    let attrs = &input.attrs;
    let mut missing = Vec::new();
    if attrs.profile.is_none() {
        missing.push("`profile`");
    }
    if attrs.model_name.is_none() {
        missing.push("`model_name`");
    }
    if attrs.partition.is_none() && attrs.partition_fn.is_none() {
        missing.push("`partition`");
    }
    if !missing.is_empty() {
        errors.spanned(
            input.ident,
            format!(
                "missing {} in `#[morango(...)]`: a syncable model names its profile, its Morango model name and its \
                 partition, e.g. `#[morango(profile = \"facilitydata\", model_name = \"learner\", \
                 partition = \"${{facility_id}}:user-ro:${{id}}\")]`",
                join_and(&missing)
            ),
        );
    }
    for (lit, key) in [(&attrs.profile, "profile"), (&attrs.model_name, "model_name")] {
        if let Some(lit) = lit
            && lit.value().is_empty()
        {
            errors.spanned(lit, format!("`{key}` must not be empty"));
        }
    }
    if let (Some(_), Some(path)) = (&attrs.partition, &attrs.partition_fn) {
        errors.spanned(path, "give either `partition = \"...\"` or `partition_fn = path`, not both");
    }
    if let (Some(_), Some(path)) = (&attrs.source_id, &attrs.source_id_fn) {
        errors.spanned(path, "give either `source_id = \"...\"` or `source_id_fn = path`, not both");
    }
    if let Some((style, lit)) = &input.sea.rename_all
        && *style != Some(CaseStyle::Snake)
    {
        errors.spanned(
            lit,
            "`rename_all` would also rename Morango's bookkeeping columns (`id`, `morango_source_id`, \
             `morango_partition`, `morango_dirty_bit`), which the sync engine finds under SeaORM's default names: \
             remove `rename_all` and rename other columns with `#[sea_orm(column_name = \"...\")]`",
        );
    }
    for ty in &attrs.depends_on {
        if relation::is_self_entity(ty) {
            errors.spanned(ty, "a model cannot depend on itself: remove this `depends_on` entry");
        }
    }
}

fn id_field(input: &Model<'_>, errors: &mut Errors) {
    let Some(id) = input.fields.iter().find(|f| f.name == ID) else {
        errors.spanned(
            input.ident,
            "a syncable model needs the record id column: add `#[sea_orm(primary_key, auto_increment = false)] \
             pub id: String` (Morango computes 32-character hex record ids from the partition and source id)",
        );
        return;
    };
    if !is_type(id.ty, "String") {
        errors.spanned(
            id.ty,
            "Morango record ids are 32-character hex strings: declare `pub id: String` (a database-generated id \
             would differ between devices)",
        );
    }
    if id.sea.primary_key.is_none() {
        errors.spanned(id.ident, "`id` must be the primary key: add `#[sea_orm(primary_key, auto_increment = false)]`");
    }
    if let Some(auto) = &id.sea.auto_increment
        && auto.value
    {
        errors.spanned(
            auto,
            "Morango computes record ids, so the database must not generate them: write `auto_increment = false`",
        );
    }
    for field in &input.fields {
        if field.name != ID
            && let Some(span) = field.sea.primary_key
        {
            errors.at(
                span,
                format!(
                    "Morango identifies a record by `id` alone, so `{}` cannot be part of the primary key: remove \
                     `primary_key` here (add a unique index in your migration if you need one)",
                    field.name
                ),
            );
        }
    }
}

fn bookkeeping_fields(input: &Model<'_>, errors: &mut Errors) {
    let mut missing = Vec::new();
    for (name, ty) in BOOKKEEPING {
        let Some(field) = input.fields.iter().find(|f| f.name == name) else {
            missing.push(format!("pub {name}: {ty},"));
            continue;
        };
        if !is_type(field.ty, ty) {
            errors.spanned(
                field.ty,
                format!("the Morango bookkeeping field `{name}` must be `{ty}`: write `pub {name}: {ty}`"),
            );
        }
    }
    if !missing.is_empty() {
        errors.spanned(
            input.ident,
            format!(
                "missing Morango bookkeeping field{}: add `{}` to the model (and the columns to its table)",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(" ")
            ),
        );
    }
}

/// Keys that make no sense on `id`, bookkeeping or ignored fields.
fn field_attributes(input: &Model<'_>, errors: &mut Errors) {
    for field in &input.fields {
        let name = &field.name;
        if !is_plain(field) {
            let what = if name == ID { "the record id" } else { "a Morango bookkeeping field" };
            if let Some(lit) = &field.sea.column_name {
                errors.spanned(
                    lit,
                    format!("`{name}` is {what} and keeps SeaORM's default column name: remove `column_name`"),
                );
            }
            if let Some(span) = field.sea.ignore {
                errors.at(span, format!("`{name}` is {what} and must be a column: remove `ignore`"));
            }
            if let Some(span) = field.attrs.local {
                errors.at(span, format!("`{name}` is {what}, which Morango manages itself: remove `local`"));
            }
            if let Some(expr) = &field.attrs.default {
                errors.spanned(expr, format!("`{name}` is {what}, which Morango fills in itself: remove `default`"));
            }
            if let Some(path) = &field.attrs.with {
                errors.spanned(path, format!("`{name}` is {what}, which Morango writes itself: remove `with`"));
            }
        } else if let (Some(path), Some(_)) = (&field.attrs.with, field.attrs.local) {
            errors.spanned(
                path,
                format!("`{name}` is `#[morango(local)]`, never written to record JSON: remove `with` or `local`"),
            );
        } else if field.sea.ignore.is_some() {
            if let Some(span) = field.attrs.local {
                errors.at(
                    span,
                    format!("`{name}` is `#[sea_orm(ignore)]`, not a column, so it is never synced: remove `local`"),
                );
            }
            if let Some(expr) = &field.attrs.default {
                errors.spanned(
                    expr,
                    format!("`{name}` is `#[sea_orm(ignore)]`, not a column, so it is never synced: remove `default`"),
                );
            }
        }
    }
}

/// Django's `content_type` + `object_id` and Rails' `<x>_type` + `<x>_id`: a foreign key whose table is chosen at
/// run time.
fn generic_foreign_keys(input: &Model<'_>, errors: &mut Errors) {
    let synced: Vec<&Field<'_>> =
        input.fields.iter().filter(|f| is_plain(f) && f.sea.ignore.is_none() && f.attrs.local.is_none()).collect();
    let find = |name: &str| synced.iter().copied().find(|f| f.name == name);
    let mut reported = BTreeSet::new();
    let mut report = |kind: &Field<'_>, id: &Field<'_>, style: &str| {
        if kind.attrs.not_generic_fk.is_some()
            || id.attrs.not_generic_fk.is_some()
            || !reported.insert(kind.name.clone())
        {
            return;
        }
        errors.spanned(
            kind.ident,
            format!(
                "`{k}` + `{i}` look like a {style}: the table `{i}` points into is chosen at run time, so Morango can \
                 neither apply these records after their target nor check that the target is synced; replace the pair \
                 with one nullable foreign key per target model, or, if `{k}` does not name a table, mark it \
                 `#[morango(not_generic_fk)]`",
                k = kind.name,
                i = id.name
            ),
        );
    };
    if let Some(object_id) = find("object_id") {
        for name in ["content_type", "content_type_id"] {
            if let Some(kind) = find(name) {
                report(kind, object_id, "Django generic foreign key");
            }
        }
    }
    for kind in &synced {
        if let Some(stem) = kind.name.strip_suffix("_type")
            && !stem.is_empty()
            && let Some(id) = find(&format!("{stem}_id"))
        {
            report(kind, id, "polymorphic (generic) foreign key");
        }
    }
}

/// Checks a template or function; `None` when absent (`Some(None)` is "absent and allowed" for source ids).
fn id_source<'a>(
    input: &Model<'a>,
    key: &str,
    template: Option<&LitStr>,
    function: Option<&syn::Path>,
    errors: &mut Errors,
) -> Option<Option<IdSource<'a>>> {
    if let Some(path) = function {
        return Some(Some(IdSource::Function(path.clone())));
    }
    let Some(lit) = template else {
        return if key == "partition" { None } else { Some(None) };
    };
    let pieces = match template::parse(&lit.value()) {
        Ok(pieces) => pieces,
        Err(message) => {
            errors.spanned(lit, message);
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push(TemplatePiece::Text(text)),
            Piece::Field(name) if name == ID && key == "partition" => out.push(TemplatePiece::Text("${id}".into())),
            Piece::Field(name) => match template_field(input, key, &name) {
                Ok(field) => out.push(TemplatePiece::Field(field.ident, name)),
                Err(message) => {
                    errors.spanned(lit, message);
                    ok = false;
                }
            },
        }
    }
    ok.then_some(Some(IdSource::Template(lit.clone(), out)))
}

fn template_field<'a, 'b>(input: &'b Model<'a>, key: &str, name: &str) -> Result<&'b Field<'a>, String> {
    if name == ID {
        return Err(format!(
            "`${{id}}` cannot be used in `{key}`: the record id is computed from the source id; build the source id \
             from other fields"
        ));
    }
    if BOOKKEEPING.iter().any(|(n, _)| *n == name) {
        return Err(format!("`${{{name}}}` cannot be used in `{key}`: Morango computes `{name}` itself"));
    }
    match input.fields.iter().find(|f| f.name == name) {
        Some(field) if field.sea.ignore.is_some() => {
            Err(format!("`${{{name}}}` in `{key}` is `#[sea_orm(ignore)]`, not a column: use a column of this model"))
        }
        Some(field) => Ok(field),
        None => {
            let available: Vec<&str> = input
                .fields
                .iter()
                .filter(|f| is_plain(f) && f.sea.ignore.is_none())
                .map(|f| f.name.as_str())
                .collect();
            let extra = if key == "partition" { " and `${id}` (the record id)" } else { "" };
            Err(format!(
                "the model has no field `{name}` for `${{{name}}}` in `{key}`; a template can use {}{extra}",
                if available.is_empty() {
                    "no fields".to_owned()
                } else {
                    format!("`${{{}}}`", available.join("}`, `${"))
                }
            ))
        }
    }
}

/// `ty` is the plain type `name` (`String`, `std::string::String`, `bool`).
fn is_type(ty: &Type, name: &str) -> bool {
    let Type::Path(path) = ty else { return false };
    path.qself.is_none() && path.path.segments.last().is_some_and(|s| s.ident == name && s.arguments.is_none())
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
