//! `impl Syncable for Entity`: names, record JSON and the ids of a new record.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use crate::plan::{IdSource, ModelPlan, PlanField, TemplatePiece};

/// The `Syncable` impl of a valid model.
pub fn expand(plan: &ModelPlan<'_>) -> TokenStream {
    let model = plan.model;
    let model_name = &plan.model_name;
    let profile = &plan.profile;
    let fields = plan.synced.iter().map(|f| &f.key);
    let columns = plan.synced.iter().map(|f| &f.column);
    let local_columns = plan.local.iter().map(|f| &f.column);
    let has_hook = plan.on_conflict.is_some();
    let partition = partition_body(&plan.partition);
    let source_id = source_id_body(plan.source_id.as_ref());
    let compute_id = plan.id_fn.as_ref().map(|path| {
        let call = quote_spanned!(path.span()=> #path(partition_template, source_id, model_name));
        quote! {
            fn compute_namespaced_id(partition_template: &str, source_id: &str, model_name: &str) -> ::std::string::String {
                #call
            }
        }
    });
    let resolve_conflict = plan.on_conflict.as_ref().map(|path| {
        let call = quote_spanned!(path.span()=> #path(conflict));
        quote! {
            fn resolve_conflict(conflict: &::morango::Conflict<'_>) -> ::morango::Resolution {
                #call
            }
        }
    });
    let discriminator = match &plan.discriminator {
        Some((field, column, value)) => quote! {
            ::core::option::Option::Some(::morango::Discriminator { field: #field, column: #column, value: #value })
        },
        None => quote!(::core::option::Option::None),
    };
    let record_identity = record_identity(plan);
    let bookkeeping = bookkeeping(plan);
    let to_record = to_record(plan);
    let from_record = from_record(plan);
    quote! {
        #[automatically_derived]
        impl ::morango::Syncable for Entity {
            const MODEL_NAME: &'static str = #model_name;
            const PROFILE: &'static str = #profile;
            const FIELDS: &'static [&'static str] = &[#(#fields),*];
            const SYNCED_COLUMNS: &'static [&'static str] = &[#(#columns),*];
            const LOCAL_COLUMNS: &'static [&'static str] = &[#(#local_columns),*];
            const NODE: ::morango::__private::graph::NodeRef =
                ::morango::__private::graph::NodeRef::new(&__MORANGO_NODE);
            const HAS_CONFLICT_HOOK: bool = #has_hook;
            const DISCRIMINATOR: ::core::option::Option<::morango::Discriminator> = #discriminator;

            #[allow(unused_variables)]
            fn partition_template(
                model: &ActiveModel,
            ) -> ::core::result::Result<::std::string::String, ::morango::IdError> {
                #partition
            }

            #[allow(unused_variables)]
            fn source_id(
                model: &ActiveModel,
            ) -> ::core::result::Result<::core::option::Option<::std::string::String>, ::morango::IdError> {
                #source_id
            }

            #compute_id

            fn record_id(model: &#model) -> &str {
                &model.id
            }

            #bookkeeping
            #to_record
            #from_record
            #resolve_conflict
            #record_identity
        }
    }
}

/// `record_identity` reading only the template fields from the record JSON, when both the partition and the source
/// id are templates over synced fields; otherwise the trait's default (the whole active model, then the functions).
fn record_identity(plan: &ModelPlan<'_>) -> Option<TokenStream> {
    let partition = match &plan.partition {
        IdSource::Template(_, pieces) => record_template(plan, pieces)?,
        IdSource::Function(_) => return None,
    };
    let source_id = match &plan.source_id {
        None => quote!(::core::option::Option::None),
        Some(IdSource::Template(_, pieces)) => {
            let text = record_template(plan, pieces)?;
            quote!(::core::option::Option::Some(#text))
        }
        Some(IdSource::Function(_)) => return None,
    };
    Some(quote! {
        fn record_identity(
            record: &::morango::Record,
        ) -> ::core::result::Result<::morango::RecordIdentity, ::morango::IdError> {
            ::core::result::Result::Ok(::morango::RecordIdentity { partition_template: #partition, source_id: #source_id })
        }
    })
}

/// A block building a template's text from record JSON; `None` when a piece is not a synced field.
fn record_template(plan: &ModelPlan<'_>, pieces: &[TemplatePiece<'_>]) -> Option<TokenStream> {
    let mut pushes = Vec::new();
    for piece in pieces {
        pushes.push(match piece {
            TemplatePiece::Text(text) => quote!(text.push_str(#text);),
            TemplatePiece::Field(ident, name) => {
                let field = plan.synced.iter().find(|f| f.ident == *ident)?;
                let (key, ty) = (&field.key, field.ty);
                quote! {
                    text.push_str(&::morango::__private::record_template_field::<#ty>(record, #key, #name)?);
                }
            }
        });
    }
    Some(quote! {{
        let mut text = ::std::string::String::new();
        #(#pushes)*
        text
    }})
}

fn partition_body(source: &IdSource<'_>) -> TokenStream {
    match source {
        IdSource::Function(path) => quote_spanned!(path.span()=> #path(model)),
        IdSource::Template(lit, pieces) => {
            let text = template(lit, pieces);
            quote!(::core::result::Result::Ok(#text))
        }
    }
}

fn source_id_body(source: Option<&IdSource<'_>>) -> TokenStream {
    match source {
        None => quote!(::core::result::Result::Ok(::core::option::Option::None)),
        Some(IdSource::Function(path)) => {
            let call = quote_spanned!(path.span()=> #path(model));
            quote!(::core::result::Result::map(#call, ::core::option::Option::Some))
        }
        Some(IdSource::Template(lit, pieces)) => {
            let text = template(lit, pieces);
            quote!(::core::result::Result::Ok(::core::option::Option::Some(#text)))
        }
    }
}

/// A block building the template text; `?` returns the error of an unset field.
fn template(lit: &syn::LitStr, pieces: &[TemplatePiece<'_>]) -> TokenStream {
    let pushes = pieces.iter().map(|piece| match piece {
        TemplatePiece::Text(text) => quote!(text.push_str(#text);),
        TemplatePiece::Field(ident, name) => quote_spanned! {lit.span()=>
            text.push_str(&::morango::__private::template_field(&model.#ident, #name)?);
        },
    });
    quote! {{
        let mut text = ::std::string::String::new();
        #(#pushes)*
        text
    }}
}

fn bookkeeping(plan: &ModelPlan<'_>) -> TokenStream {
    let [id, source_id, partition] = plan.bookkeeping;
    let set = quote!(::morango::__private::sea_orm::ActiveValue::Set);
    quote! {
        fn bookkeeping(model: &ActiveModel) -> ::morango::Bookkeeping {
            ::morango::Bookkeeping {
                id: model.#id.try_as_ref().cloned(),
                source_id: model.#source_id.try_as_ref().cloned(),
                partition: model.#partition.try_as_ref().cloned(),
            }
        }

        fn set_bookkeeping(model: &mut ActiveModel, bookkeeping: ::morango::Bookkeeping) {
            if let ::core::option::Option::Some(value) = bookkeeping.id {
                model.#id = #set(value);
            }
            if let ::core::option::Option::Some(value) = bookkeeping.source_id {
                model.#source_id = #set(value);
            }
            if let ::core::option::Option::Some(value) = bookkeeping.partition {
                model.#partition = #set(value);
            }
        }
    }
}

fn to_record(plan: &ModelPlan<'_>) -> TokenStream {
    let model = plan.model;
    let inserts = plan.synced.iter().map(|f| {
        let (ident, key, ty) = (f.ident, &f.key, f.ty);
        let value = match &f.with {
            Some(codec) => quote_spanned!(codec.span()=> #codec::to_json(&model.#ident)),
            None => quote_spanned!(ty.span()=> <#ty as ::morango::MorangoValue>::to_json(&model.#ident)),
        };
        quote!(record.insert(::std::string::String::from(#key), #value);)
    });
    quote! {
        fn to_record(model: &#model) -> ::morango::Record {
            let mut record = ::morango::Record::new();
            #(#inserts)*
            record
        }
    }
}

fn from_record(plan: &ModelPlan<'_>) -> TokenStream {
    // Hygienic names: a user's `default = ...` expression cannot see or shadow them.
    let record = Ident::new("record", Span::mixed_site());
    let errors = Ident::new("errors", Span::mixed_site());
    let set = quote!(::morango::__private::sea_orm::ActiveValue::Set);
    let vars: Vec<_> =
        plan.synced.iter().map(|f| Ident::new(&format!("field_{}", f.key), Span::mixed_site())).collect();
    let reads = plan.synced.iter().zip(&vars).map(|(f, var)| {
        let (key, ty) = (&f.key, f.ty);
        let default = default_value(f);
        let parse = match &f.with {
            Some(codec) => quote_spanned!(codec.span()=> #codec::from_json),
            None => quote_spanned!(ty.span()=> <#ty as ::morango::MorangoValue>::from_json),
        };
        quote!(let #var = ::morango::__private::read_field(#record, #key, &mut #errors, #parse, || #default);)
    });
    let synced = plan.synced.iter().map(|f| f.ident);
    let local = plan.local.iter().map(|f| {
        let (ident, default) = (f.ident, default_value(f));
        quote!(#ident: #set(#default),)
    });
    let dirty_bit = plan.dirty_bit;
    quote! {
        fn from_record(
            #record: &::morango::Record,
        ) -> ::core::result::Result<ActiveModel, ::morango::FieldErrors> {
            let mut #errors = ::std::vec::Vec::new();
            #(#reads)*
            let (#(::core::option::Option::Some(#vars),)*) = (#(#vars,)*) else {
                return ::core::result::Result::Err(::morango::FieldErrors(#errors));
            };
            ::core::result::Result::Ok(ActiveModel {
                #(#synced: #set(#vars),)*
                #(#local)*
                #dirty_bit: #set(false),
            })
        }
    }
}

/// The value of a field missing from incoming JSON (and of a local field on insert): the user's expression (of the
/// field's type) or `SyncDefault`, whose missing impl is reported at the field type.
fn default_value(field: &PlanField<'_>) -> TokenStream {
    let ty = field.ty;
    match &field.default {
        Some(expr) => quote!(#expr),
        None => quote_spanned!(ty.span()=> <#ty as ::morango::SyncDefault>::sync_default()),
    }
}
