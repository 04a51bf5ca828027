//! Code generation from validated input. Nothing here can fail: every check happened in `valid`.

mod behavior;
mod fallback;
mod graph;
mod model;
mod relations;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ast::{Input, RelationEnum};
use crate::errors::Errors;
use crate::valid;

/// `#[derive(Syncable)]`.
pub fn syncable(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let Some(ast) = Input::from_syn(input, &mut errors) else {
        return errors.to_compile_errors();
    };
    match ast {
        Input::Model(model) => match valid::model(*model, &mut errors) {
            Ok(plan) => {
                let mut out = model::expand(&plan);
                out.extend(graph::expand(&plan));
                if !plan.custom_behavior {
                    out.extend(behavior::expand());
                }
                out
            }
            Err(fallback) => {
                let mut out = errors.to_compile_errors();
                out.extend(fallback::expand(&fallback));
                out
            }
        },
        // `#[sea_orm::compact_model]`: the user's `enum Relation` carries `#[derive(SyncableRelations)]`.
        Input::ModelEx(ex) if ex.compact => errors.to_compile_errors(),
        Input::ModelEx(ex) => {
            let plan = valid::relations(ex.relations, &mut errors);
            relations_or_fallback(&quote::format_ident!("Relation"), &plan, &errors)
        }
    }
}

/// `#[derive(SyncableRelations)]`.
pub fn syncable_relations(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let Some(relation) = RelationEnum::from_syn(input, &mut errors) else {
        return errors.to_compile_errors();
    };
    let plan = valid::relations(relation.relations, &mut errors);
    relations_or_fallback(relation.ident, &plan, &errors)
}

fn relations_or_fallback(ident: &syn::Ident, plan: &crate::plan::RelationsPlan, errors: &Errors) -> TokenStream {
    if errors.is_empty() {
        relations::expand(ident, plan)
    } else {
        let mut out = errors.to_compile_errors();
        out.extend(relations::fallback(ident));
        out
    }
}
